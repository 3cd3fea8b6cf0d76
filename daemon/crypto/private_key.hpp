#pragma once

#include "crypto/public_key.hpp"
#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace crypto {

// An X25519 private key, held in SecretBytes, with its public key derived once.
class PrivateKey
{
public:
  // A fresh random key pair (crypto_box_keypair).
  static util::Result<PrivateKey> generate();
  // Reads a private key file: refused unless its mode is 0600 or stricter (the error names
  // the mode). Errors name the file and never contain key material.
  static util::Result<PrivateKey> load(const std::string& path);
  // Decodes key-file text (one line of base64, a trailing newline allowed); errors start
  // with `where` ("stdin").
  static util::Result<PrivateKey> from_text(std::span<const unsigned char> text,
                                            std::string_view where);
  // Takes 32 raw bytes.
  static util::Result<PrivateKey> from_bytes(SecretBytes bytes);

  [[nodiscard]] const PublicKey& public_key() const { return m_public; }
  [[nodiscard]] std::span<const unsigned char> view() const { return m_secret.view(); }
  // The key-file text without newline, in locked memory.
  [[nodiscard]] util::Result<SecretBytes> to_base64() const;

private:
  PrivateKey(SecretBytes secret, const PublicKey& pub)
    : m_secret(std::move(secret))
    , m_public(pub)
  {
  }

  SecretBytes m_secret;
  PublicKey m_public;
};

} // namespace crypto
