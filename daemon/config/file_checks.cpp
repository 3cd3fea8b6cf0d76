#include "config/file_checks.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace config {

namespace {

// Secrets and keys are small; a bound keeps a mistaken path (/dev/zero) harmless.
constexpr std::size_t k_max_secret_bytes = 64 * 1024;

std::string
parent_of(const std::string& path)
{
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  if (slash == 0) {
    return "/";
  }
  return path.substr(0, slash);
}

} // namespace

std::string
format_mode(mode_t mode)
{
  return fmt::format("{:04o}", mode & 07777);
}

util::Result<std::string>
read_secret_file(const std::string& path)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return util::make_error("io", fmt::format("cannot be read: {}", std::strerror(errno)));
  }
  struct stat st
  {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return util::make_error("io", "expected a regular file");
  }
  if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    ::close(fd);
    return util::make_error(
      "permission",
      fmt::format("expected a file not readable by group or others (chmod 0600), found mode {}",
                  format_mode(st.st_mode)));
  }
  std::string content;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      ::close(fd);
      return util::make_error("io", fmt::format("cannot be read: {}", std::strerror(err)));
    }
    if (n == 0) {
      break;
    }
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > k_max_secret_bytes) {
      ::close(fd);
      return util::make_error("io", "expected at most 64 KiB, found a larger file");
    }
  }
  ::close(fd);
  return content;
}

util::Result<void>
check_not_writable_by_others(const std::string& path, bool check_parent)
{
  struct stat st
  {};
  if (::stat(path.c_str(), &st) != 0) {
    return util::make_error("io", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return util::make_error(
      "permission", fmt::format("expected {} not writable by group or others, found mode {}", path,
                                format_mode(st.st_mode)));
  }
  if (check_parent) {
    const auto dir = parent_of(path);
    struct stat dst
    {};
    if (::stat(dir.c_str(), &dst) != 0) {
      return util::make_error("io", fmt::format("{}: {}", dir, std::strerror(errno)));
    }
    // A sticky world-writable directory (/tmp) still lets others plant new names.
    if ((dst.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      return util::make_error(
        "permission",
        fmt::format("expected directory {} not writable by group or others, found mode {}", dir,
                    format_mode(dst.st_mode)));
    }
  }
  return {};
}

util::Result<void>
check_readable(const std::string& path)
{
  struct stat st
  {};
  if (::stat(path.c_str(), &st) != 0) {
    return util::make_error("io", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return util::make_error("io", fmt::format("{}: expected a regular file", path));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return util::make_error("io", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  return {};
}

} // namespace config
