#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

// Standard base64 (RFC 4648 §4, with padding): the script payload and the JTR-RESULT
// line. Decoding writes into a caller's buffer so a secret can go straight to wiped
// memory (issue 7's decoder), never through a std::string.
namespace jenkins::base64 {

std::string encode(std::string_view bytes);

// Bytes that decoding `size` characters of base64 can produce at most.
constexpr std::size_t
max_decoded_size(std::size_t size)
{
  return size / 4 * 3 + 3;
}

// Decodes `text` into `out` (at least max_decoded_size(text.size()) bytes). Returns the
// byte count, or nullopt for anything but canonical padded base64.
std::optional<std::size_t> decode(std::string_view text, char* out);

// Decodes text that holds no secret.
std::optional<std::string> decode(std::string_view text);

} // namespace jenkins::base64
