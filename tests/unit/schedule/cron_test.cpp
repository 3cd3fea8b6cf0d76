#include "schedule/cron.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

using schedule::Cron;

namespace {

std::string
cron_error(const char* text)
{
  const auto c = Cron::parse(text);
  REQUIRE_FALSE(c.has_value());
  return c.error().message;
}

} // namespace

TEST_SUITE("schedule::Cron")
{
  TEST_CASE("lists, ranges and steps set exactly the values they name")
  {
    const auto c = Cron::parse("1,10-12,*/20 */6 * * *");
    REQUIRE(c.has_value());
    for (unsigned m = 0; m < 60; ++m) {
      const bool expected = m == 1 || m == 10 || m == 11 || m == 12 || m == 0 || m == 20 || m == 40;
      CHECK_MESSAGE(c->minute(m) == expected, "minute ", m);
    }
    for (unsigned h = 0; h < 24; ++h) {
      CHECK_MESSAGE(c->hour(h) == (h % 6 == 0), "hour ", h);
    }
    const auto r = Cron::parse("1-10/2 * * * *");
    REQUIRE(r.has_value());
    for (unsigned m = 0; m < 60; ++m) {
      CHECK_MESSAGE(r->minute(m) == (m == 1 || m == 3 || m == 5 || m == 7 || m == 9), "minute ", m);
    }
  }

  TEST_CASE("the minutes of the day are every matching hour and minute, ascending")
  {
    const auto c = Cron::parse("45,5 9-10,23 * * *");
    REQUIRE(c.has_value());
    const std::vector<std::uint16_t> expected = { 9 * 60 + 5,   9 * 60 + 45, 10 * 60 + 5,
                                                  10 * 60 + 45, 23 * 60 + 5, 23 * 60 + 45 };
    CHECK(c->times_of_day() == expected);
    CHECK(Cron::parse("* * * * *")->times_of_day().size() == 24 * 60);
  }

  TEST_CASE("month and weekday names are read case-insensitively, 0 and 7 are Sunday")
  {
    const auto c = Cron::parse("0 0 * JAN-Mar,dec Mon-fri");
    REQUIRE(c.has_value());
    // month, day, weekday (0 = Sunday)
    CHECK(c->day_matches(1, 5, 1));
    CHECK(c->day_matches(3, 5, 5));
    CHECK(c->day_matches(12, 5, 3));
    CHECK_FALSE(c->day_matches(4, 5, 1));
    CHECK_FALSE(c->day_matches(1, 5, 0));
    CHECK_FALSE(c->day_matches(1, 5, 6));
    for (const char* sunday : { "0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * SUN" }) {
      const auto s = Cron::parse(sunday);
      REQUIRE(s.has_value());
      CHECK_MESSAGE(s->day_matches(6, 7, 0), sunday);
      CHECK_FALSE_MESSAGE(s->day_matches(6, 8, 1), sunday);
    }
    const auto weekend = Cron::parse("0 0 * * 6-7");
    REQUIRE(weekend.has_value());
    CHECK(weekend->day_matches(1, 1, 6));
    CHECK(weekend->day_matches(1, 1, 0));
    CHECK_FALSE(weekend->day_matches(1, 1, 1));
  }

  TEST_CASE("a day matches either day field when both are restricted (Vixie cron)")
  {
    const auto both = Cron::parse("0 0 1,15 * mon");
    REQUIRE(both.has_value());
    CHECK(both->day_matches(5, 1, 4)); // the 1st, a Thursday
    CHECK(both->day_matches(5, 4, 1)); // a Monday, the 4th
    CHECK_FALSE(both->day_matches(5, 5, 2));
    // A field starting with '*' is not a restriction for this rule: both must match.
    const auto star = Cron::parse("0 0 */2 * mon");
    REQUIRE(star.has_value());
    CHECK(star->day_matches(5, 3, 1));
    CHECK_FALSE(star->day_matches(5, 4, 1));
    CHECK_FALSE(star->day_matches(5, 3, 2));
    const auto dom_only = Cron::parse("0 0 13 * *");
    REQUIRE(dom_only.has_value());
    CHECK(dom_only->day_matches(5, 13, 3));
    CHECK_FALSE(dom_only->day_matches(5, 14, 3));
  }

  TEST_CASE("the hour field starting with '*' makes the line follow real time")
  {
    CHECK(Cron::parse("0 * * * *")->hour_wildcard());
    CHECK(Cron::parse("0 */2 * * *")->hour_wildcard());
    CHECK_FALSE(Cron::parse("0 0-23 * * *")->hour_wildcard());
    CHECK_FALSE(Cron::parse("* 3 * * *")->hour_wildcard());
  }

  TEST_CASE("errors name the field and the value")
  {
    CHECK(cron_error("0 3 * *") ==
          "expected a 5-field cron line or 'every <duration>', found \"0 3 * *\" (4 fields)");
    CHECK(cron_error("") ==
          "expected a 5-field cron line or 'every <duration>', found \"\" (0 fields)");
    CHECK(cron_error("60 * * * *") ==
          "expected a minute 0-59 in field 1 of the cron line, found \"60\"");
    CHECK(cron_error("0 24 * * *") ==
          "expected an hour 0-23 in field 2 of the cron line, found \"24\"");
    CHECK(cron_error("0 0 0 * *") ==
          "expected a day of the month 1-31 in field 3 of the cron line, found \"0\"");
    CHECK(cron_error("0 0 * foo *") ==
          "expected a month 1-12 or jan-dec in field 4 of the cron line, found \"foo\"");
    CHECK(cron_error("0 0 * * 8") ==
          "expected a weekday 0-7 or sun-sat in field 5 of the cron line, found \"8\"");
    CHECK(cron_error("1,,2 * * * *") ==
          "expected a minute 0-59 in field 1 of the cron line, found \"1,,2\"");
    CHECK(cron_error("*/0 * * * *") ==
          "expected a step of at least 1 in field 1 of the cron line, found \"*/0\"");
    CHECK(cron_error("5/15 * * * *") == "expected a range or '*' before '/' (such as 5-59/15) in "
                                        "field 1 of the cron line, found \"5/15\"");
    CHECK(cron_error("0 0 10-5 * *") ==
          "expected a range low-high with low <= high in field 3 of the cron line, found \"10-5\"");
    CHECK(cron_error("0 0 * * sat-sun") == "expected a range low-high with low <= high in field 5 "
                                           "of the cron line, found \"sat-sun\"");
    CHECK(cron_error("0 0 30 2 *") ==
          "expected a cron line that matches some date, found \"0 0 30 2 *\", which never runs");
    CHECK(cron_error("0 0 31 apr,jun *") == "expected a cron line that matches some date, found "
                                            "\"0 0 31 apr,jun *\", which never runs");
  }

  TEST_CASE("a step wider than its range is refused: it names only the first value")
  {
    // The fuzzer's findings (tests/fuzz/corpus/schedule/finding-*): each was accepted, and a
    // '*'-based single day such as "*/8" (Sunday only, yet '*' for the day rule) made the
    // line run once and then never within the search.
    CHECK(cron_error("1\t1  5\t1 */8") ==
          "expected a step of at most 6 in field 5 of the cron line (a larger step names only 0: "
          "write that alone), found \"*/8\"");
    CHECK(cron_error("1  2 */56 2 1 ") ==
          "expected a step of at most 30 in field 3 of the cron line (a larger step names only "
          "1: write that alone), found \"*/56\"");
    CHECK(cron_error("*/512   */56  */56 6 1 ") ==
          "expected a step of at most 59 in field 1 of the cron line (a larger step names only "
          "0: write that alone), found \"*/512\"");
    CHECK(cron_error("5 7 2 2 */7") ==
          "expected a step of at most 6 in field 5 of the cron line (a larger step names only 0: "
          "write that alone), found \"*/7\"");
    CHECK(cron_error("1,1 01 2 6  */7 ") ==
          "expected a step of at most 6 in field 5 of the cron line (a larger step names only 0: "
          "write that alone), found \"*/7\"");
    CHECK(cron_error("0 10-12/3 * * *") ==
          "expected a step of at most 2 in field 2 of the cron line (a larger step names only "
          "10: write that alone), found \"10-12/3\"");
    CHECK(cron_error("0 0 * 1-12/12 *") ==
          "expected a step of at most 11 in field 4 of the cron line (a larger step names only "
          "1: write that alone), found \"1-12/12\"");
    // The widest steps that still name two values, and a step of 1 over a single value.
    CHECK(Cron::parse("*/59 */23 */30 */11 */6").has_value());
    CHECK(Cron::parse("0 10-12/2 * * *").has_value());
    CHECK(Cron::parse("0 5-5/1 * * *").has_value());
  }

  TEST_CASE("February 29 and the 31st of long months do run")
  {
    CHECK(Cron::parse("0 12 29 2 *").has_value());
    CHECK(Cron::parse("0 0 31 * *").has_value());
    // Both day fields restricted: the weekday alone makes it run.
    CHECK(Cron::parse("0 0 30 2 mon").has_value());
  }
}
