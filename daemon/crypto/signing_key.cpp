#include "crypto/signing_key.hpp"

#include "crypto/base64.hpp"
#include "crypto/key_file.hpp"
#include "crypto/public_key.hpp"
#include "crypto/secret_io.hpp"
#include "crypto/sodium.hpp"

#include <fmt/core.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace crypto {

namespace {

static_assert(crypto_sign_PUBLICKEYBYTES == 32 && crypto_sign_SEEDBYTES == 32 &&
              crypto_sign_SECRETKEYBYTES == 64 && crypto_sign_BYTES == 64);

bool
starts_with(std::span<const unsigned char> text, std::string_view prefix)
{
  return text.size() >= prefix.size() &&
         std::memcmp(text.data(), prefix.data(), prefix.size()) == 0;
}

// The 32 bytes after `prefix` in a one-line key text.
util::Result<SecretBytes>
decode_prefixed(std::span<const unsigned char> text, std::string_view prefix, std::string_view what,
                std::string_view where)
{
  const auto expected =
    fmt::format("expected one line \"{}<base64 of 32 bytes>\" ({})", prefix, what);
  if (!text.empty() && text.back() == '\n') {
    text = text.first(text.size() - 1);
  }
  if (std::find(text.begin(), text.end(), '\n') != text.end()) {
    return util::make_error("key",
                            fmt::format("{}: {}, found more than one line", where, expected));
  }
  if (!starts_with(text, prefix)) {
    const bool other_ed25519 =
      starts_with(text, SigningKey::k_prefix) || starts_with(text, VerifyKey::k_prefix);
    const auto bare = from_base64_secret(text);
    std::string found = "something else";
    if (other_ed25519) {
      found =
        starts_with(text, SigningKey::k_prefix) ? "a private signing key" : "a public verify key";
    } else if (bare && bare->size() == 32) {
      found = "an X25519 sealing key (keygen without --sign)";
    } else if (text.empty()) {
      found = "nothing";
    }
    return util::make_error("key", fmt::format("{}: {}, found {}", where, expected, found));
  }
  auto key = from_base64_secret(text.subspan(prefix.size()));
  if (!key || key->size() != 32) {
    return util::make_error(
      "key", fmt::format("{}: {}, found text that is not base64 of 32 bytes", where, expected));
  }
  return key;
}

} // namespace

util::Result<VerifyKey>
VerifyKey::load(const std::string& path)
{
  const std::string_view what = "verify key file";
  auto text =
    read_secret_file(path, { what, k_max_key_file_bytes, SecretFileMode::not_writable_by_others });
  if (!text) {
    return text.error();
  }
  return from_text(text->view(), fmt::format("{} {}", what, path));
}

util::Result<VerifyKey>
VerifyKey::from_text(std::span<const unsigned char> text, std::string_view where)
{
  auto key = decode_prefixed(text, k_prefix, "an Ed25519 public key from keygen --sign", where);
  if (!key) {
    return key.error();
  }
  Bytes bytes{};
  std::copy(key->view().begin(), key->view().end(), bytes.begin());
  return VerifyKey(bytes);
}

std::string
VerifyKey::key_id() const
{
  return key_id_of(m_bytes);
}

std::string
VerifyKey::to_text() const
{
  return std::string(k_prefix) + to_base64(m_bytes);
}

bool
VerifyKey::verify(std::span<const unsigned char> message,
                  std::span<const unsigned char> signature) const
{
  if (!init_sodium() || signature.size() != crypto_sign_BYTES) {
    return false;
  }
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     m_bytes.data()) == 0;
}

util::Result<SigningKey>
SigningKey::generate()
{
  if (auto ok = init_sodium(); !ok) {
    return ok.error();
  }
  auto secret = SecretBytes::allocate(crypto_sign_SECRETKEYBYTES);
  if (!secret) {
    return secret.error();
  }
  VerifyKey::Bytes pub{};
  crypto_sign_keypair(pub.data(), secret->data());
  return SigningKey(std::move(*secret), VerifyKey(pub));
}

util::Result<SigningKey>
SigningKey::load(const std::string& path)
{
  const std::string_view what = "signing key file";
  auto text = read_secret_file(path, { what, k_max_key_file_bytes, SecretFileMode::owner_only });
  if (!text) {
    return text.error();
  }
  return from_text(text->view(), fmt::format("{} {}", what, path));
}

util::Result<SigningKey>
SigningKey::from_text(std::span<const unsigned char> text, std::string_view where)
{
  auto seed = decode_prefixed(text, k_prefix, "an Ed25519 private key from keygen --sign", where);
  if (!seed) {
    return seed.error();
  }
  if (auto ok = init_sodium(); !ok) {
    return ok.error();
  }
  auto secret = SecretBytes::allocate(crypto_sign_SECRETKEYBYTES);
  if (!secret) {
    return secret.error();
  }
  VerifyKey::Bytes pub{};
  crypto_sign_seed_keypair(pub.data(), secret->data(), seed->data());
  return SigningKey(std::move(*secret), VerifyKey(pub));
}

util::Result<SecretBytes>
SigningKey::to_text() const
{
  auto seed = to_base64_secret(m_secret.view().first(crypto_sign_SEEDBYTES));
  if (!seed) {
    return seed.error();
  }
  auto out = SecretBytes::allocate(k_prefix.size() + seed->size());
  if (!out) {
    return out.error();
  }
  std::memcpy(out->data(), k_prefix.data(), k_prefix.size());
  std::memcpy(out->data() + k_prefix.size(), seed->data(), seed->size());
  return out;
}

std::array<unsigned char, SigningKey::k_signature_bytes>
SigningKey::sign(std::span<const unsigned char> message) const
{
  std::array<unsigned char, k_signature_bytes> sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), m_secret.data());
  return sig;
}

} // namespace crypto
