// DESIGN §2.3: the scripts run on old controllers, whose JVM may be Java 8. Jenkins
// compiles them at run time, so a post-Java-8 call only fails there: lint the texts.

#include <doctest/doctest.h>

#include <jenkins/embedded_scripts.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Java 9+ APIs (and Java 10+ syntax) a Groovy script might reach for.
constexpr std::string_view k_post_java8[] = {
  ".strip(",
  ".stripLeading(",
  ".stripTrailing(",
  ".stripIndent(",
  ".isBlank(",
  ".lines(",
  ".repeat(",
  ".indent(",
  ".translateEscapes(",
  ".formatted(",
  ".describeConstable(",
  "List.of(",
  "Set.of(",
  "Map.of(",
  "Map.ofEntries(",
  "Map.entry(",
  "List.copyOf(",
  "Set.copyOf(",
  "Map.copyOf(",
  ".toList()",
  "toUnmodifiableList",
  "toUnmodifiableSet",
  "toUnmodifiableMap",
  "Collectors.teeing",
  "Collectors.filtering",
  "Collectors.flatMapping",
  "Stream.ofNullable",
  ".takeWhile(",
  ".dropWhile(",
  ".iterate(", // the three-argument Stream.iterate is Java 9; Groovy has its own idioms
  ".ifPresentOrElse(",
  ".orElseThrow()",
  ".or(",
  ".isEmpty()", // Optional.isEmpty is Java 11; Java 8 code says !isPresent() or length/size
  "requireNonNullElse",
  "Objects.checkIndex",
  "Path.of(",
  "Files.readString",
  "Files.writeString",
  "readString(",
  "writeString(",
  "Files.mismatch",
  ".readAllBytes()",
  ".readNBytes(",
  ".transferTo(",
  "InputStream.nullInputStream",
  "OutputStream.nullOutputStream",
  "Reader.nullReader",
  "Writer.nullWriter",
  "HttpClient",
  "java.net.http",
  "LocalDate.ofInstant(",
  "LocalTime.ofInstant(",
  ".datesUntil(",
  ".toEpochSecond(java.time.LocalTime",
  ".toEpochSecond(LocalTime",
  "Duration.toSeconds",
  ".toSecondsPart(",
  ".toMillisPart(",
  ".dividedBy(Duration",
  "ProcessHandle",
  "StackWalker",
  "Runtime.version(",
  "Predicate.not(",
  "Optional.stream",
  "Math.fma(",
  "record ",
  "sealed ",
  "permits ",
  "yield ",
};

bool
is_identifier_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The banned patterns found in `text`, plus `var x` (Java 10 local type inference).
std::vector<std::string>
post_java8_uses(std::string_view text)
{
  std::vector<std::string> found;
  for (const auto pattern : k_post_java8) {
    for (auto at = text.find(pattern); at != std::string_view::npos;
         at = text.find(pattern, at + 1)) {
      // Word patterns ("record ", "yield ") only as whole words.
      if (is_identifier_char(pattern.front()) && at > 0 && is_identifier_char(text[at - 1])) {
        continue;
      }
      found.emplace_back(pattern);
      break;
    }
  }
  for (auto at = text.find("var "); at != std::string_view::npos; at = text.find("var ", at + 1)) {
    if (at == 0 || (!is_identifier_char(text[at - 1]) && text[at - 1] != '.')) {
      found.emplace_back("var ");
      break;
    }
  }
  return found;
}

} // namespace

TEST_SUITE("jenkins scripts: Java 8 only")
{
  TEST_CASE("the lint finds post-Java-8 calls and var declarations")
  {
    CHECK(post_java8_uses("def s = name.strip()\n").size() == 1);
    CHECK(post_java8_uses("var x = 1\n").size() == 1);
    CHECK(post_java8_uses("  if (x) {\n    var y = List.of(1)\n").size() == 2);
    CHECK(post_java8_uses("def d = LocalDate.ofInstant(i, zone)\n").size() == 1);
    CHECK(post_java8_uses("if (opt.isEmpty()) {}\n").size() == 1);
    CHECK(post_java8_uses("def variant = input.variant\nthe record\n").empty());
    CHECK(post_java8_uses("t.atZone(zone).toLocalDate()\nx.isPresent()\n").empty());
  }

  TEST_CASE("no embedded script uses an API newer than Java 8")
  {
    const std::vector<std::string_view> required = { "mint", "list", "revoke", "probe" };
    std::size_t linted = 0;
    for (const auto& s : jenkins::embedded::k_scripts) {
      INFO("script ", s.name);
      const auto found = post_java8_uses(s.text);
      std::string joined;
      for (const auto& f : found) {
        joined += "'" + f + "' ";
      }
      CHECK_MESSAGE(found.empty(), joined);
      for (const auto name : required) {
        linted += s.name == name ? 1 : 0;
      }
    }
    CHECK(linted == required.size());
  }
}
