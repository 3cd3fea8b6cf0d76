#include "crypto/key_file.hpp"

#include "crypto/base64.hpp"
#include "crypto/secret_io.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crypto {

namespace {

// A key file is 45 bytes; the bound keeps a wrong path (/dev/zero, a log) harmless.
constexpr std::size_t k_max_key_file_bytes = 4096;

std::string
mode_string(mode_t mode)
{
  return fmt::format("{:04o}", mode & 07777);
}

} // namespace

util::Result<SecretBytes>
decode_key_text(std::span<const unsigned char> text, std::string_view where)
{
  constexpr std::string_view k_expected = "expected one line of standard base64 of a 32-byte key";
  if (!text.empty() && text.back() == '\n') {
    text = text.first(text.size() - 1);
  }
  if (text.empty()) {
    return util::make_error("key", fmt::format("{}: {}, found nothing", where, k_expected));
  }
  for (const unsigned char c : text) {
    if (c == '\n') {
      return util::make_error("key",
                              fmt::format("{}: {}, found more than one line", where, k_expected));
    }
  }
  auto key = from_base64_secret(text);
  if (!key) {
    return util::make_error(
      "key", fmt::format("{}: {}, found text that is not standard base64", where, k_expected));
  }
  if (key->size() != k_key_bytes) {
    return util::make_error(
      "key", fmt::format("{}: {}, found base64 of {} bytes", where, k_expected, key->size()));
  }
  return key;
}

util::Result<SecretBytes>
read_key_file(const std::string& path, KeyFileKind kind)
{
  const char* what = kind == KeyFileKind::private_key ? "private key file" : "public key file";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return util::make_error(
      "io", fmt::format("{} {}: cannot open: {}", what, path, std::strerror(errno)));
  }
  // fstat on the descriptor we read from, so the mode checked is the mode of these bytes.
  struct stat st
  {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return util::make_error("io", fmt::format("{} {}: expected a regular file", what, path));
  }
  if (kind == KeyFileKind::private_key && (st.st_mode & 0177) != 0) {
    ::close(fd);
    return util::make_error(
      "permission",
      fmt::format("{} {}: expected mode 0600 or stricter, found mode {} (chmod 0600 {})", what,
                  path, mode_string(st.st_mode), path));
  }
  if (kind == KeyFileKind::public_key && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    ::close(fd);
    return util::make_error(
      "permission",
      fmt::format("{} {}: expected a file not writable by group or others, found mode {} "
                  "(chmod go-w {})",
                  what, path, mode_string(st.st_mode), path));
  }
  const std::string where = fmt::format("{} {}", what, path);
  auto text = read_secret(fd, k_max_key_file_bytes, where);
  ::close(fd);
  if (!text) {
    return text.error();
  }
  return decode_key_text(text->view(), where);
}

} // namespace crypto
