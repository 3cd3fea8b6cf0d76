#include "crypto/secret_io.hpp"

#include "util/unique_fd.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crypto {

util::Result<SecretBytes>
read_secret_file(const std::string& path, const SecretFileRules& rules)
{
  const std::string where = rules.what.empty() ? path : fmt::format("{} {}", rules.what, path);
  // O_NONBLOCK: opening a FIFO for reading waits for a writer otherwise.
  const util::UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (file.get() < 0) {
    return util::make_error("io", fmt::format("{}: cannot open: {}", where, std::strerror(errno)));
  }
  struct stat st
  {};
  if (::fstat(file.get(), &st) != 0) {
    return util::make_error("io", fmt::format("{}: cannot stat: {}", where, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return util::make_error("io", fmt::format("{}: expected a regular file, found {}", where,
                                              util::describe_file_type(st.st_mode)));
  }
  const auto mode = fmt::format("{:04o}", st.st_mode & 07777);
  switch (rules.mode) {
    case SecretFileMode::owner_only:
      if ((st.st_mode & 0177) != 0) {
        return util::make_error(
          "permission", fmt::format("{}: expected mode 0600 or stricter, found mode {} (chmod "
                                    "0600 {})",
                                    where, mode, path));
      }
      break;
    case SecretFileMode::not_readable_by_others:
      if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
        return util::make_error(
          "permission",
          fmt::format("{}: expected a file not readable by group or others, found mode {} "
                      "(chmod 0600 {})",
                      where, mode, path));
      }
      break;
    case SecretFileMode::not_writable_by_others:
      if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return util::make_error(
          "permission",
          fmt::format("{}: expected a file not writable by group or others, found mode {} "
                      "(chmod go-w {})",
                      where, mode, path));
      }
      break;
  }
  if (st.st_size > 0 && static_cast<std::size_t>(st.st_size) > rules.max_bytes) {
    return util::make_error("io", fmt::format("{}: expected at most {} bytes, found {}", where,
                                              rules.max_bytes, st.st_size));
  }
  // A regular file never blocks; blocking reads keep read_secret simple.
  (void)::fcntl(file.get(), F_SETFL, 0);
  return read_secret(file.get(), rules.max_bytes, where);
}

util::Result<SecretBytes>
read_secret(int fd, std::size_t max_bytes, std::string_view where)
{
  // One byte more than allowed tells "exactly max" from "too long".
  auto buf = SecretBytes::allocate(max_bytes + 1);
  if (!buf) {
    return buf.error();
  }
  std::size_t used = 0;
  while (used < buf->size()) {
    const ssize_t n = ::read(fd, buf->data() + used, buf->size() - used);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return util::make_error("io",
                              fmt::format("{}: cannot read: {}", where, std::strerror(errno)));
    }
    if (n == 0) {
      break;
    }
    used += static_cast<std::size_t>(n);
  }
  if (used > max_bytes) {
    return util::make_error(
      "io", fmt::format("{}: expected at most {} bytes, found more", where, max_bytes));
  }
  buf->resize_down(used);
  return buf;
}

util::Result<void>
write_all(int fd, std::span<const unsigned char> bytes, std::string_view where)
{
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return util::make_error("io",
                              fmt::format("{}: cannot write: {}", where, std::strerror(errno)));
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

} // namespace crypto
