#include "crypto/public_key.hpp"

#include "crypto/base64.hpp"
#include "crypto/key_file.hpp"
#include "crypto/sodium.hpp"

#include <fmt/core.h>
#include <sodium.h>

#include <algorithm>

namespace crypto {

namespace {

PublicKey
from_secret(const SecretBytes& key)
{
  PublicKey::Bytes bytes{};
  std::copy(key.view().begin(), key.view().end(), bytes.begin());
  return PublicKey(bytes);
}

} // namespace

util::Result<PublicKey>
PublicKey::load(const std::string& path)
{
  auto key = read_key_file(path, KeyFileKind::public_key);
  if (!key) {
    return key.error();
  }
  return from_secret(*key);
}

util::Result<PublicKey>
PublicKey::from_base64(std::string_view text, std::string_view where)
{
  auto key =
    decode_key_text({ reinterpret_cast<const unsigned char*>(text.data()), text.size() }, where);
  if (!key) {
    return key.error();
  }
  return from_secret(*key);
}

std::string
PublicKey::key_id() const
{
  return key_id_of(m_bytes);
}

std::string
key_id_of(std::span<const unsigned char> key)
{
  // init cannot fail here in practice; crypto_hash_sha256 needs no randomness anyway.
  (void)init_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), key.data(), key.size());
  std::string hex(9, '\0');
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), 4);
  hex.resize(8);
  return hex;
}

std::string
PublicKey::to_base64() const
{
  return crypto::to_base64(m_bytes);
}

} // namespace crypto
