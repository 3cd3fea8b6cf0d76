#include "state/dir_lock.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <utility>

namespace state {

namespace {

// The pid the holder wrote, or empty while it has not written it yet.
std::string
read_holder(int fd)
{
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) {
    return {};
  }
  long pid = 0;
  const auto [end, ec] = std::from_chars(buf, buf + n, pid);
  if (ec != std::errc() || pid <= 0) {
    return {};
  }
  (void)end;
  return std::to_string(pid);
}

} // namespace

DirLock::DirLock(std::string path, int fd)
  : m_path(std::move(path))
  , m_fd(fd)
{
}

util::Result<DirLock>
DirLock::acquire(const std::string& path)
{
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return util::make_error("io",
                            fmt::format("{}: cannot be opened: {}", path, std::strerror(errno)));
  }
  // flock locks belong to the open file description, so a second Store in the same
  // process conflicts too, and a forked child inheriting our descriptor cannot unlock it.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      const auto holder = read_holder(fd);
      ::close(fd);
      return util::make_error(
        "locked",
        fmt::format("{}: held by another jenkins-token-rotator process{}; only one process at "
                    "a time may use the state database: stop it or wait for it to finish",
                    path, holder.empty() ? "" : fmt::format(" (pid {})", holder)));
    }
    ::close(fd);
    return util::make_error("io",
                            fmt::format("{}: cannot be locked: {}", path, std::strerror(err)));
  }
  const auto pid = fmt::format("{}\n", ::getpid());
  // The pid is advisory (it only improves the message), so a failed write is not fatal.
  if (::ftruncate(fd, 0) == 0) {
    (void)!::pwrite(fd, pid.data(), pid.size(), 0);
  }
  return DirLock(path, fd);
}

DirLock::~DirLock()
{
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

DirLock::DirLock(DirLock&& other) noexcept
  : m_path(std::move(other.m_path))
  , m_fd(std::exchange(other.m_fd, -1))
{
}

DirLock&
DirLock::operator=(DirLock&& other) noexcept
{
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_path = std::move(other.m_path);
    m_fd = std::exchange(other.m_fd, -1);
  }
  return *this;
}

} // namespace state
