#pragma once

#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <array>
#include <span>
#include <string>
#include <string_view>

// The daemon's optional Ed25519 signing key (issue 19 #3; libsodium crypto_sign). Its files
// say which kind of key they hold, so a sealing key (X25519, DESIGN §4: one bare line of
// base64) is never taken for a signing key nor the other way round:
//   private key file   `ed25519-sign:<base64 of the 32-byte seed>`   (0600, keygen --sign)
//   public key         `ed25519-verify:<base64 of the 32-byte key>`  (printed by keygen --sign)
// one line each, at most one trailing newline; standard base64 with padding.
namespace crypto {

// An Ed25519 public key: checks envelope signatures. Not secret.
class VerifyKey
{
public:
  using Bytes = std::array<unsigned char, 32>;
  static constexpr std::string_view k_prefix = "ed25519-verify:";

  explicit VerifyKey(const Bytes& bytes)
    : m_bytes(bytes)
  {
  }

  // Reads a verify key file; refused when group or others may write it (whoever can swap
  // it decides which envelopes are trusted). Errors name the file.
  static util::Result<VerifyKey> load(const std::string& path);
  // Decodes `ed25519-verify:<base64>`; errors start with `where`.
  static util::Result<VerifyKey> from_text(std::span<const unsigned char> text,
                                           std::string_view where);

  [[nodiscard]] const Bytes& bytes() const { return m_bytes; }
  // First 8 lowercase hex digits of SHA-256 of the 32 key bytes, as for sealing keys.
  [[nodiscard]] std::string key_id() const;
  // `ed25519-verify:<base64>`, no newline.
  [[nodiscard]] std::string to_text() const;
  // crypto_sign_verify_detached: true when `signature` (64 bytes) signs `message`.
  [[nodiscard]] bool verify(std::span<const unsigned char> message,
                            std::span<const unsigned char> signature) const;

private:
  Bytes m_bytes;
};

// An Ed25519 key pair; the secret half lives in SecretBytes.
class SigningKey
{
public:
  static constexpr std::string_view k_prefix = "ed25519-sign:";
  static constexpr std::size_t k_signature_bytes = 64;

  static util::Result<SigningKey> generate();
  // Reads a private signing key file (0600 or stricter). Errors name the file.
  static util::Result<SigningKey> load(const std::string& path);
  // Decodes `ed25519-sign:<base64 of the seed>`; errors start with `where`.
  static util::Result<SigningKey> from_text(std::span<const unsigned char> text,
                                            std::string_view where);

  [[nodiscard]] const VerifyKey& verify_key() const { return m_public; }
  // `ed25519-sign:<base64 of the seed>`, no newline, in locked memory.
  [[nodiscard]] util::Result<SecretBytes> to_text() const;
  // crypto_sign_detached over `message`.
  [[nodiscard]] std::array<unsigned char, k_signature_bytes> sign(
    std::span<const unsigned char> message) const;

private:
  SigningKey(SecretBytes secret, const VerifyKey& pub)
    : m_secret(std::move(secret))
    , m_public(pub)
  {
  }

  SecretBytes m_secret; // libsodium's 64-byte secret key: seed then public key
  VerifyKey m_public;
};

} // namespace crypto
