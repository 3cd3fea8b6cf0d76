#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// Text from outside (a config value, an envelope field, a file name) echoed in a message
// must not reach a terminal or a log as anything but visible text: no newline that forges
// a log line, no ESC that sets colours or a terminal title, no bidi control that reorders
// what is shown, no invalid UTF-8, and no 900 KB line (issue 19 #5).
namespace util {

// Bytes of the value kept by default; the rest is counted, not shown.
inline constexpr std::size_t k_max_echo_bytes = 200;

// The value in double quotes, `"` and `\` backslash-escaped, control characters as \n, \r,
// \t or \xNN (ESC is \x1b), DEL and each byte of invalid UTF-8 as \xNN, C1 controls,
// U+2028/U+2029 and bidi controls as \u{NNNN}. A value longer than max_bytes keeps its
// first max_bytes bytes (cut at a character boundary) followed by `…(N bytes)` outside
// the quotes, N the full length.
std::string quote(std::string_view value, std::size_t max_bytes = k_max_echo_bytes);

// The same escapes for text that is already a message (its own quotes and backslashes stay
// as they are), truncated the same way. Used where a whole message may carry raw input.
std::string escape(std::string_view text, std::size_t max_bytes);

} // namespace util
