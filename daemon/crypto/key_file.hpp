#pragma once

#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

// Key files hold one line of standard base64 of a 32-byte X25519 key (DESIGN §4).
namespace crypto {

constexpr std::size_t k_key_bytes = 32;
// The largest key file read (box keys and the signing key): one line of base64.
constexpr std::size_t k_max_key_file_bytes = 4096;

enum class KeyFileKind
{
  public_key,  // must not be writable by group or others
  private_key, // must be 0600 or stricter
};

// Reads and decodes a key file after checking its real mode on the opened descriptor.
// Errors name the file (and the mode); they never contain key material.
util::Result<SecretBytes> read_key_file(const std::string& path, KeyFileKind kind);

// Decodes the text of a key file: base64 of 32 bytes, at most one trailing newline.
// Errors start with `where` (a file name, "stdin").
util::Result<SecretBytes> decode_key_text(std::span<const unsigned char> text,
                                          std::string_view where);

} // namespace crypto
