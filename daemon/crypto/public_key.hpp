#pragma once

#include "util/error.hpp"

#include <array>
#include <span>
#include <string>
#include <string_view>

namespace crypto {

// First 8 lowercase hex digits of SHA-256 of a public key's bytes (DESIGN §6): the key_id
// of sealing and verify keys alike.
std::string key_id_of(std::span<const unsigned char> key);

// An X25519 public key (a recipient of sealed tokens). Not secret.
class PublicKey
{
public:
  using Bytes = std::array<unsigned char, 32>;

  explicit PublicKey(const Bytes& bytes)
    : m_bytes(bytes)
  {
  }

  // Reads a public key file (one line of standard base64); refused when group or others
  // may write it, since whoever can swap it receives the tokens. Errors name the file.
  static util::Result<PublicKey> load(const std::string& path);
  // Decodes one line of base64 (a trailing newline allowed); errors start with `where`.
  static util::Result<PublicKey> from_base64(std::string_view text, std::string_view where);

  [[nodiscard]] const Bytes& bytes() const { return m_bytes; }
  [[nodiscard]] std::span<const unsigned char> view() const { return m_bytes; }
  // First 8 lowercase hex digits of SHA-256 of the 32 key bytes (DESIGN §6).
  [[nodiscard]] std::string key_id() const;
  [[nodiscard]] std::string to_base64() const;

  friend bool operator==(const PublicKey&, const PublicKey&) = default;

private:
  Bytes m_bytes;
};

} // namespace crypto
