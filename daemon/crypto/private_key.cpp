#include "crypto/private_key.hpp"

#include "crypto/base64.hpp"
#include "crypto/key_file.hpp"
#include "crypto/sodium.hpp"

#include <fmt/core.h>
#include <sodium.h>

namespace crypto {

static_assert(crypto_box_SECRETKEYBYTES == k_key_bytes &&
              crypto_box_PUBLICKEYBYTES == k_key_bytes && crypto_scalarmult_BYTES == k_key_bytes &&
              crypto_scalarmult_SCALARBYTES == k_key_bytes);

util::Result<PrivateKey>
PrivateKey::generate()
{
  auto secret = SecretBytes::allocate(k_key_bytes);
  if (!secret) {
    return secret.error();
  }
  PublicKey::Bytes pub{};
  crypto_box_keypair(pub.data(), secret->data());
  return PrivateKey(std::move(*secret), PublicKey(pub));
}

util::Result<PrivateKey>
PrivateKey::from_bytes(SecretBytes bytes)
{
  if (bytes.size() != k_key_bytes) {
    return util::make_error("key", fmt::format("expected a {}-byte private key, found {} bytes",
                                               k_key_bytes, bytes.size()));
  }
  if (auto ok = init_sodium(); !ok) {
    return ok.error();
  }
  PublicKey::Bytes pub{};
  // crypto_box keys are X25519 scalars: the public key is the clamped scalar times the base
  // point, which is what crypto_box_keypair computes too.
  if (crypto_scalarmult_base(pub.data(), bytes.data()) != 0) {
    return util::make_error("key", "the private key yields no usable public key");
  }
  return PrivateKey(std::move(bytes), PublicKey(pub));
}

util::Result<PrivateKey>
PrivateKey::load(const std::string& path)
{
  auto bytes = read_key_file(path, KeyFileKind::private_key);
  if (!bytes) {
    return bytes.error();
  }
  return from_bytes(std::move(*bytes));
}

util::Result<PrivateKey>
PrivateKey::from_text(std::span<const unsigned char> text, std::string_view where)
{
  auto bytes = decode_key_text(text, where);
  if (!bytes) {
    return bytes.error();
  }
  return from_bytes(std::move(*bytes));
}

util::Result<SecretBytes>
PrivateKey::to_base64() const
{
  return to_base64_secret(m_secret.view());
}

} // namespace crypto
