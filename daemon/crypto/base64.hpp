#pragma once

#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

// Standard base64 with padding (RFC 4648 §4, sodium_base64_VARIANT_ORIGINAL): the alphabet
// of key files (WireGuard's convention) and envelope ciphertexts. Decoding is strict: no
// whitespace, no missing padding, no stray bits. Messages never quote the input.
namespace crypto {

std::string to_base64(std::span<const unsigned char> bytes);

// Errors: "base64" when `text` is not canonical standard base64.
util::Result<std::vector<unsigned char>> from_base64(std::string_view text);

// The same for secrets: the text form of a private key is as secret as the key.
util::Result<SecretBytes> to_base64_secret(std::span<const unsigned char> bytes);
util::Result<SecretBytes> from_base64_secret(std::span<const unsigned char> text);

} // namespace crypto
