#include "util/quote.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

// Nothing a terminal acts on: no byte below 0x20 and no DEL survive.
bool
printable(const std::string& s)
{
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return false;
    }
  }
  return true;
}

} // namespace

TEST_SUITE("util::quote")
{
  TEST_CASE("plain text is quoted as it is; quotes and backslashes are escaped")
  {
    CHECK(util::quote("svc-deploy") == "\"svc-deploy\"");
    CHECK(util::quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(util::quote("Grüße, 東京") == "\"Grüße, 東京\"");
    CHECK(util::quote("") == "\"\"");
  }

  TEST_CASE("newlines, terminal-title escapes and colour codes become visible escapes")
  {
    const std::string forged = "x\n2026-12-06 INFO rotation ok\r\n";
    CHECK(util::quote(forged) == "\"x\\n2026-12-06 INFO rotation ok\\r\\n\"");
    const std::string title = "\x1b]0;pwned\x07";
    CHECK(util::quote(title) == "\"\\x1b]0;pwned\\x07\"");
    const std::string colour = "\x1b[31mred\x1b[0m\t";
    CHECK(util::quote(colour) == "\"\\x1b[31mred\\x1b[0m\\t\"");
    CHECK(util::quote(std::string("a\0b\x7f", 4)) == "\"a\\x00b\\x7f\"");
    for (const auto& s : { forged, title, colour }) {
      CHECK(printable(util::quote(s)));
      CHECK(printable(util::escape(s, 1000)));
    }
  }

  TEST_CASE("invalid UTF-8, C1 controls and bidi overrides are escaped")
  {
    CHECK(util::quote("\xff\xfe") == "\"\\xff\\xfe\"");
    CHECK(util::quote("\xc0\xaf") == "\"\\xc0\\xaf\"");          // overlong '/'
    CHECK(util::quote("\xed\xa0\x80") == "\"\\xed\\xa0\\x80\""); // a surrogate
    CHECK(util::quote("\xe2\x82") == "\"\\xe2\\x82\"");          // cut short
    CHECK(util::quote("\xc2\x9b"
                      "31m") == "\"\\u{009b}31m\""); // 8-bit CSI
    CHECK(util::quote("abc\xe2\x80\xae"
                      "txt.exe") == "\"abc\\u{202e}txt.exe\"");
  }

  TEST_CASE("a 900 KB line is cut at 200 bytes with its length")
  {
    const std::string line(900 * 1024, 'A');
    const auto q = util::quote(line);
    CHECK(q == "\"" + std::string(200, 'A') + "\"…(921600 bytes)");
    CHECK(util::quote(line, 10) == "\"AAAAAAAAAA\"…(921600 bytes)");
    CHECK(util::escape(line, 300).size() < 400);
    // No character is split: three-byte characters cut before the 200th byte.
    std::string wide;
    for (int i = 0; i < 100; ++i) {
      wide += "東";
    }
    const auto w = util::quote(wide);
    CHECK(w.starts_with("\"東"));
    CHECK(w.find("\\x") == std::string::npos);
    CHECK(w.find("\"…(300 bytes)") != std::string::npos);
  }

  TEST_CASE("escape keeps a message's own quotes")
  {
    CHECK(util::escape("expected a string, found \"a\\\"b\"", 200) ==
          "expected a string, found \"a\\\"b\"");
    CHECK(util::escape("unknown key \"\x1b[2J\"", 200) == "unknown key \"\\x1b[2J\"");
  }
}
