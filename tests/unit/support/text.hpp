#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// Small helpers several test files share.
namespace test {

// `text` with its first `from` replaced by `to`; the test fails when `from` is absent.
inline std::string
replace(std::string text, const std::string& from, const std::string& to)
{
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  text.replace(pos, from.size(), to);
  return text;
}

// The bytes of a C string, without its terminating NUL.
inline std::span<const unsigned char>
as_bytes(const char* s)
{
  return { reinterpret_cast<const unsigned char*>(s), std::strlen(s) };
}

// Whether any of `lines` contains `text`.
inline bool
any_contains(const std::vector<std::string>& lines, std::string_view text)
{
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

// `lines`, each followed by a newline (for a failure message).
inline std::string
joined(const std::vector<std::string>& lines)
{
  std::string out;
  for (const auto& l : lines) {
    out += l + "\n";
  }
  return out;
}

} // namespace test
