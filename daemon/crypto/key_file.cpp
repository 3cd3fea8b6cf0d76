#include "crypto/key_file.hpp"

#include "crypto/base64.hpp"
#include "crypto/secret_io.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace crypto {

namespace {

// A key file is 45 bytes; the bound keeps a wrong path (/dev/zero, a log) harmless.

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
  // Ed25519 key files say so (crypto/signing_key.hpp): never taken for a sealing key.
  constexpr std::string_view k_ed25519 = "ed25519-";
  if (text.size() >= k_ed25519.size() &&
      std::equal(k_ed25519.begin(), k_ed25519.end(), text.begin())) {
    return util::make_error(
      "key", fmt::format("{}: {}, found an Ed25519 signing or verify key (keygen --sign): "
                         "sealing takes an X25519 key (keygen without --sign)",
                         where, k_expected));
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
  const bool secret = kind == KeyFileKind::private_key;
  auto text = read_secret_file(
    path, { secret ? "private key file" : "public key file", k_max_key_file_bytes,
            secret ? SecretFileMode::owner_only : SecretFileMode::not_writable_by_others });
  if (!text) {
    return text.error();
  }
  return decode_key_text(
    text->view(), fmt::format("{} {}", secret ? "private key file" : "public key file", path));
}

} // namespace crypto
