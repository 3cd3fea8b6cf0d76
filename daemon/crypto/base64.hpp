#pragma once

#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

// Standard base64 with padding (RFC 4648 §4, sodium_base64_VARIANT_ORIGINAL), the one base64
// of the daemon: key files (WireGuard's convention), envelope ciphertexts and signatures,
// the Groovy scripts' payload and JTR-RESULT line, Basic auth. Decoding is strict: no
// whitespace, no missing padding, no stray bits. Messages never quote the input.
namespace crypto {

std::string to_base64(std::span<const unsigned char> bytes);
// Text that holds no secret (a script's JSON payload).
std::string to_base64(std::string_view bytes);

// Errors: "base64" when `text` is not canonical standard base64.
util::Result<std::vector<unsigned char>> from_base64(std::string_view text);
// The same into a std::string, for text that holds no secret (a script's JSON answer).
util::Result<std::string> from_base64_text(std::string_view text);

// The same for secrets: the text form of a private key is as secret as the key.
util::Result<SecretBytes> to_base64_secret(std::span<const unsigned char> bytes);
util::Result<SecretBytes> from_base64_secret(std::span<const unsigned char> text);

} // namespace crypto
