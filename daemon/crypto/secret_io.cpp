#include "crypto/secret_io.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace crypto {

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
