#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

// Checks on single values that the loader's sections share.
namespace config {

// Letters, digits, '.', '_' and '-', 1 to max_len of them.
bool is_name(std::string_view s, std::size_t max_len);

// Headers an http sink sets itself: message framing (net::Client's is_framing_header)
// and the Idempotency-Key of DESIGN §6. Compared case-insensitively, as HTTP does.
bool is_reserved_header(std::string_view name);

// RFC 9110 token characters.
bool is_header_name(std::string_view name);

// Accepts UTF-8 without NUL bytes; returns the byte offset of the first bad byte.
std::optional<std::size_t> find_invalid_utf8(std::string_view s);

struct Url
{
  std::string scheme;
  std::string host;
  std::string normalised; // scheme://host:port/path/ lower-cased host, default port explicit
};

// An absolute http(s) URL without user info, query or fragment.
std::optional<Url> parse_url(const std::string& text);

bool is_loopback_host(const std::string& host);

} // namespace config
