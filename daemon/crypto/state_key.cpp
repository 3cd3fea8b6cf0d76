#include "crypto/state_key.hpp"

#include "crypto/base64.hpp"
#include "crypto/sealed_box.hpp"
#include "crypto/secret_io.hpp"

#include <fmt/core.h>
#include <sodium.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace crypto {

StateKeyPath
state_key_path(const std::string& configured, const std::string& state_dir)
{
  if (!configured.empty()) {
    return { configured, false };
  }
  if (const char* creds = std::getenv("CREDENTIALS_DIRECTORY"); creds != nullptr && *creds != 0) {
    auto path = fmt::format("{}/state_key", creds);
    struct stat st
    {};
    if (::stat(path.c_str(), &st) == 0) {
      return { path, false };
    }
  }
  return { state_dir + "/state_key", true };
}

util::Result<SecretBytes>
make_token_value()
{
  auto random = SecretBytes::allocate(16);
  if (!random) {
    return random.error();
  }
  randombytes_buf(random->data(), random->size());
  // sodium_bin2hex writes 2n + 1 bytes (a terminating NUL), lowercase.
  auto hex = SecretBytes::allocate(2 + 32 + 1);
  if (!hex) {
    return hex.error();
  }
  hex->data()[0] = '1';
  hex->data()[1] = '1';
  sodium_bin2hex(reinterpret_cast<char*>(hex->data() + 2), 33, random->data(), random->size());
  hex->resize_down(34);
  return std::move(*hex);
}

namespace {

util::Result<void>
create_key_file(const std::string& path)
{
  auto key = PrivateKey::generate();
  if (!key) {
    return key.error();
  }
  auto text = key->to_base64();
  if (!text) {
    return text.error();
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      return {}; // made meanwhile: load it
    }
    return util::make_error(
      "state_key", fmt::format("{}: cannot create the state key: {}", path, std::strerror(err)));
  }
  auto written = write_all(fd, text->view(), path);
  const unsigned char newline = '\n';
  if (written) {
    written = write_all(fd, { &newline, 1 }, path);
  }
  if (written && ::fsync(fd) != 0) {
    written =
      util::make_error("state_key", fmt::format("{}: fsync: {}", path, std::strerror(errno)));
  }
  ::close(fd);
  if (!written) {
    ::unlink(path.c_str());
    return written.error();
  }
  return {};
}

} // namespace

util::Result<StateKey>
StateKey::load(const StateKeyPath& where)
{
  struct stat st
  {};
  if (where.create && ::lstat(where.path.c_str(), &st) != 0 && errno == ENOENT) {
    if (auto made = create_key_file(where.path); !made) {
      return made.error();
    }
  }
  auto key = PrivateKey::load(where.path);
  if (!key) {
    return util::make_error("state_key", fmt::format("state_key: {}", key.error().message));
  }
  return StateKey(std::move(*key), where.path);
}

util::Result<std::string>
StateKey::seal(const SecretBytes& plain) const
{
  auto box = crypto::seal(m_key.public_key(), plain.view());
  if (!box) {
    return box.error();
  }
  return to_base64(std::span<const unsigned char>(*box));
}

util::Result<SecretBytes>
StateKey::open(std::string_view sealed) const
{
  auto box = from_base64(sealed);
  if (!box) {
    return util::make_error("open", "a sealed value in the state is not base64");
  }
  return open_sealed(m_key, *box);
}

} // namespace crypto
