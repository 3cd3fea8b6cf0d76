#include "util/quote.hpp"

#include <fmt/core.h>

#include <cstdint>

namespace util {

namespace {

// Length of the UTF-8 sequence at text[i] (1-4), or 0 when it is not valid UTF-8
// (overlong forms, surrogates and code points above U+10FFFF are invalid). `cp` receives
// the code point.
std::size_t
utf8_at(std::string_view text, std::size_t i, char32_t& cp)
{
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  char32_t min = 0;
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > text.size()) {
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

bool
invisible_control(char32_t cp)
{
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0x200e ||
         cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

// Where to cut `text` so that at most max_bytes are kept and no character is split.
std::size_t
cut_at(std::string_view text, std::size_t max_bytes)
{
  if (text.size() <= max_bytes) {
    return text.size();
  }
  std::size_t cut = max_bytes;
  // Step back over continuation bytes (at most 3) to the start of a character.
  for (int k = 0; k < 3 && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80; ++k) {
    --cut;
  }
  return cut;
}

std::string
escaped(std::string_view text, std::size_t max_bytes, bool quoted)
{
  const std::size_t keep = cut_at(text, max_bytes);
  std::string out;
  out.reserve(keep + 2);
  if (quoted) {
    out += '"';
  }
  for (std::size_t i = 0; i < keep;) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (quoted && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c == '\n') {
      out += "\\n";
      ++i;
      continue;
    }
    if (c == '\r') {
      out += "\\r";
      ++i;
      continue;
    }
    if (c == '\t') {
      out += "\\t";
      ++i;
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t n = i < keep ? utf8_at(text.substr(0, keep), i, cp) : 0;
    if (n == 0) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    if (invisible_control(cp)) {
      out += fmt::format("\\u{{{:04x}}}", static_cast<std::uint32_t>(cp));
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  if (quoted) {
    out += '"';
  }
  if (keep < text.size()) {
    out += fmt::format("…({} bytes)", text.size());
  }
  return out;
}

} // namespace

std::string
quote(std::string_view value, std::size_t max_bytes)
{
  return escaped(value, max_bytes, true);
}

std::string
escape(std::string_view text, std::size_t max_bytes)
{
  return escaped(text, max_bytes, false);
}

} // namespace util
