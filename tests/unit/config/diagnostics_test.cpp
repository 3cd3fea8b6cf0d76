#include "config/diagnostics.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

namespace {

bool
printable(const std::string& s)
{
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n') || u == 0x7f) {
      return false;
    }
  }
  return true;
}

} // namespace

TEST_SUITE("config::Diagnostics")
{
  TEST_CASE("echoed values cannot forge lines, set a terminal title or colours")
  {
    config::Diagnostics d;
    const config::Mark m{ "jtr.yaml", 3, 5 };
    d.add(m, "controllers[0].url", "expected an https URL, found x\nERROR forged line");
    d.add(m, "sinks[0]", "expected a path, found \x1b]0;pwned\x07");
    d.add(m, "user\x1b[31m", "unknown key, found \x1b[31mred\x1b[0m");
    const auto out = d.to_string();
    CHECK(printable(out));
    CHECK(out.find("found x\\nERROR forged line") != std::string::npos);
    CHECK(out.find("found \\x1b]0;pwned\\x07") != std::string::npos);
    CHECK(out.find("user\\x1b[31m: ") != std::string::npos);
    // Three entries, three lines: nothing in them broke a line.
    CHECK(std::count(out.begin(), out.end(), '\n') == 2);
  }

  TEST_CASE("a 900 KB value is cut after 200 bytes with its length; invalid UTF-8 is escaped")
  {
    config::Diagnostics d;
    const config::Mark m{ "jtr.yaml", 1, 1 };
    d.add(m, "url", "expected a URL, found " + std::string(900 * 1024, 'A'));
    d.add(m, "user", "expected UTF-8, found \"\xff\xfe\"");
    d.add_file_error("bad\nname.yaml", "cannot be read: found \x1b[2J");
    const auto out = d.to_string();
    CHECK(out.size() < 2000);
    CHECK(out.find("found " + std::string(200, 'A') + "…(921600 bytes)") != std::string::npos);
    CHECK(out.find("found \"\\xff\\xfe\"") != std::string::npos);
    CHECK(out.find("bad\\nname.yaml: cannot be read: found \\x1b[2J") != std::string::npos);
    CHECK(printable(out));
  }

  TEST_CASE("ordinary messages are unchanged")
  {
    config::Diagnostics d;
    d.add({ "jtr.yaml", 2, 3 }, "controllers[0].name",
          "expected a unique controller name, found \"ci\" again");
    CHECK(d.to_string() ==
          "jtr.yaml:2:3: controllers[0].name: expected a unique controller name, found \"ci\" "
          "again");
  }
}
