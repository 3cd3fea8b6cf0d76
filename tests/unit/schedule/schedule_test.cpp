#include "schedule/schedule.hpp"

#include <date/tz.h>
#include <doctest/doctest.h>

#include <string>
#include <vector>

using schedule::Instant;
using schedule::Jitter;
using schedule::Schedule;
using schedule::Zone;
using namespace std::chrono_literals;

namespace {

Instant
at(const char* rfc3339)
{
  auto t = schedule::parse_rfc3339(rfc3339);
  REQUIRE_MESSAGE(t.has_value(), rfc3339);
  return *t;
}

Zone
zone(const char* name)
{
  auto z = Zone::locate(name);
  REQUIRE_MESSAGE(z.has_value(), name);
  return *z;
}

Schedule
parsed(const char* text)
{
  auto s = Schedule::parse(text);
  REQUIRE_MESSAGE(s.has_value(), text);
  return *s;
}

// One schedule in one zone, a starting point and the runs that follow, each computed by
// hand from the calendar and the zone's rules (comments give the local times).
struct Case
{
  const char* schedule;
  const char* zone;
  const char* last; // the previous run; empty: none, the first run is searched from `now`
  const char* now;
  std::vector<const char*> runs;
};

const std::vector<Case> k_cases = {
  // A '*'-based weekday field and a day of the month: both must match (Vixie), Feb 29 on
  // a weekend, up to 28 years apart. The search once stopped at 9 years: no second run.
  { "0 12 29 2 */6",
    "UTC",
    "",
    "2026-06-01T00:00:00Z",
    { "2032-02-29T12:00:00Z", "2048-02-29T12:00:00Z", "2060-02-29T12:00:00Z",
      "2076-02-29T12:00:00Z", "2088-02-29T12:00:00Z", "2116-02-29T12:00:00Z" } },
  // Leap days: every 4 years, and 2100 is not a leap year.
  { "0 12 29 2 *",
    "UTC",
    "",
    "2026-06-01T00:00:00Z",
    { "2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z", "2036-02-29T12:00:00Z" } },
  { "0 12 29 2 *",
    "UTC",
    "2096-02-29T12:00:00Z",
    "2096-03-01T00:00:00Z",
    { "2104-02-29T12:00:00Z" } },
  // The 31st: months without one are skipped.
  { "0 0 31 * *",
    "UTC",
    "",
    "2026-02-01T00:00:00Z",
    { "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
      "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z",
      "2027-01-31T00:00:00Z" } },
  // Every 15 minutes, across a year boundary.
  { "*/15 * * * *",
    "UTC",
    "",
    "2026-12-31T23:37:30Z",
    { "2026-12-31T23:45:00Z", "2027-01-01T00:00:00Z", "2027-01-01T00:15:00Z" } },
  { "*/15 * * * *", "UTC", "", "2026-05-05T10:15:00Z", { "2026-05-05T10:15:00Z" } },
  // Weekdays at 09:00: 2026-01-01 is a Thursday; the year ends on a Thursday too.
  { "0 9 * * 1-5",
    "UTC",
    "",
    "2026-01-01T09:00:01Z",
    { "2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z" } },
  { "0 9 * * mon-fri",
    "UTC",
    "2026-12-31T09:00:00Z",
    "2026-12-31T10:00:00Z",
    { "2027-01-01T09:00:00Z", "2027-01-04T09:00:00Z" } },
  // New Year, once a year; in Berlin 00:00 CET is 23:00 UTC the day before.
  { "0 0 1 1 *",
    "UTC",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00Z",
    { "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z" } },
  { "0 0 1 jan *",
    "Europe/Berlin",
    "",
    "2026-06-01T00:00:00Z",
    { "2026-12-31T23:00:00Z", "2027-12-31T23:00:00Z" } },
  // Both day fields restricted: the 1st or a Monday. 2026-06-01 is a Monday.
  { "0 0 1 * 1",
    "UTC",
    "",
    "2026-06-02T00:00:00Z",
    { "2026-06-08T00:00:00Z", "2026-06-15T00:00:00Z", "2026-06-22T00:00:00Z",
      "2026-06-29T00:00:00Z", "2026-07-01T00:00:00Z", "2026-07-06T00:00:00Z" } },

  // Europe/Berlin, spring forward: 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00 UTC).
  // 02:30 does not exist that day: it runs once, right after the jump.
  { "30 2 * * *",
    "Europe/Berlin",
    "2026-03-28T01:30:00Z",
    "2026-03-28T12:00:00Z",
    { "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z" } },
  // Every quarter of the skipped hour: one run at the jump, not four.
  { "*/15 2 * * *",
    "Europe/Berlin",
    "2026-03-28T01:45:00Z",
    "2026-03-28T12:00:00Z",
    { "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:15:00Z" } },
  // A daily 03:00 run comes 23 hours after the previous one.
  { "0 3 * * *",
    "Europe/Berlin",
    "2026-03-28T02:00:00Z",
    "2026-03-28T12:00:00Z",
    { "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z" } },
  // '*' hours follow real time: 01:00 CET, then 03:00 CEST, one real hour later.
  { "0 * * * *",
    "Europe/Berlin",
    "2026-03-29T00:00:00Z",
    "2026-03-29T00:00:00Z",
    { "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z" } },
  { "30 * * * *",
    "Europe/Berlin",
    "2026-03-29T00:30:00Z",
    "2026-03-29T00:30:00Z",
    { "2026-03-29T01:30:00Z" } },

  // Europe/Berlin, fall back: 2026-10-25 03:00 CEST becomes 02:00 CET (01:00 UTC);
  // 02:00-02:59 happens twice (00:xx UTC in CEST, then 01:xx UTC in CET).
  // A fixed 02:30 runs once, at the first pass.
  { "30 2 * * *",
    "Europe/Berlin",
    "2026-10-24T00:30:00Z",
    "2026-10-24T12:00:00Z",
    { "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z" } },
  // A daily 03:00 run comes 25 hours after the previous one.
  { "0 3 * * *",
    "Europe/Berlin",
    "2026-10-24T01:00:00Z",
    "2026-10-24T12:00:00Z",
    { "2026-10-25T02:00:00Z", "2026-10-26T02:00:00Z" } },
  // '*' hours run every real hour, both passes of 02:00 included.
  { "0 * * * *",
    "Europe/Berlin",
    "2026-10-24T23:00:00Z",
    "2026-10-24T23:00:00Z",
    { "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z" } },

  // America/New_York, spring forward: 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC).
  { "30 2 * * *",
    "America/New_York",
    "2026-03-07T07:30:00Z",
    "2026-03-07T12:00:00Z",
    { "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z" } },
  { "0 * * * *",
    "America/New_York",
    "2026-03-08T06:00:00Z",
    "2026-03-08T06:00:00Z",
    { "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z" } },
  // Weekly Monday noon: 12:00 EST is 17:00 UTC, 12:00 EDT is 16:00 UTC.
  { "0 12 * * 1",
    "America/New_York",
    "",
    "2026-03-01T00:00:00Z",
    { "2026-03-02T17:00:00Z", "2026-03-09T16:00:00Z" } },

  // America/New_York, fall back: 2026-11-01 02:00 EDT becomes 01:00 EST (06:00 UTC);
  // 01:00-01:59 happens twice (05:xx UTC in EDT, then 06:xx UTC in EST).
  { "30 1 * * *",
    "America/New_York",
    "2026-10-31T05:30:00Z",
    "2026-10-31T12:00:00Z",
    { "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z" } },
  { "0 * * * *",
    "America/New_York",
    "2026-11-01T04:00:00Z",
    "2026-11-01T04:00:00Z",
    { "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z" } },
  // From 01:45 EDT (the first pass), the next half hour is 01:00 EST, the second pass.
  { "*/30 * * * *",
    "America/New_York",
    "",
    "2026-11-01T05:45:00Z",
    { "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z" } },

  // every D: the previous run plus D, whatever the zone does.
  { "every 7d",
    "Europe/Berlin",
    "2026-03-25T12:00:00Z",
    "2026-03-25T12:00:00Z",
    { "2026-04-01T12:00:00Z", "2026-04-08T12:00:00Z" } },
  { "every 1h30m",
    "UTC",
    "2026-12-31T23:00:00Z",
    "2026-12-31T23:00:00Z",
    { "2027-01-01T00:30:00Z", "2027-01-01T02:00:00Z" } },
};

} // namespace

TEST_SUITE("schedule::next_run")
{
  TEST_CASE("runs match the hand-computed table")
  {
    for (const auto& c : k_cases) {
      INFO(c.schedule, " in ", c.zone, " from last=", c.last, " now=", c.now);
      const auto s = parsed(c.schedule);
      const auto z = zone(c.zone);
      std::optional<Instant> last;
      if (*c.last != '\0') {
        last = at(c.last);
      }
      const Instant now = at(c.now);
      for (const char* expected : c.runs) {
        const auto next = schedule::next_run(s, z, Jitter{}, last, now);
        REQUIRE(next);
        CHECK(schedule::format_utc(*next) == std::string(expected));
        last = next;
      }
    }
  }

  TEST_CASE("a cron slot's jitter shifts every run by its fixed offset")
  {
    const auto s = parsed("0 3 * * *");
    const auto z = zone("UTC");
    const Jitter j{ 1h, 10min };
    // At 03:05 the 03:00 run (+10 min) is still ahead.
    auto first = schedule::next_run(s, z, j, std::nullopt, at("2026-01-01T03:05:00Z"));
    REQUIRE(first);
    CHECK(schedule::format_utc(*first) == "2026-01-01T03:10:00Z");
    auto second = schedule::next_run(s, z, j, first, at("2026-01-01T03:10:00Z"));
    REQUIRE(second);
    CHECK(schedule::format_utc(*second) == "2026-01-02T03:10:00Z");
    // Past 03:10 it is tomorrow's.
    auto late = schedule::next_run(s, z, j, std::nullopt, at("2026-01-01T03:10:01Z"));
    REQUIRE(late);
    CHECK(schedule::format_utc(*late) == "2026-01-02T03:10:00Z");
  }

  TEST_CASE("an interval slot without history starts at its phase within one jitter span")
  {
    const auto s = parsed("every 7d");
    const auto z = zone("UTC");
    // 2026-01-01T00:00:00Z is 1767225600 = 981792 * 1800: phase 0 of a 30-minute span.
    const Jitter j{ 30min, 100s };
    for (const char* now :
         { "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:01:40Z" }) {
      INFO(now);
      const auto first = schedule::next_run(s, z, j, std::nullopt, at(now));
      REQUIRE(first);
      CHECK(schedule::format_utc(*first) == "2026-01-01T00:01:40Z");
    }
    const auto after = schedule::next_run(s, z, j, std::nullopt, at("2026-01-01T00:01:41Z"));
    CHECK(schedule::format_utc(*after) == "2026-01-01T00:31:40Z");
    const auto no_jitter =
      schedule::next_run(s, z, Jitter{}, std::nullopt, at("2026-01-01T00:07:00Z"));
    CHECK(schedule::format_utc(*no_jitter) == "2026-01-01T00:07:00Z");
  }

  TEST_CASE("an overdue slot is due in the past: the caller runs it at once")
  {
    const auto s = parsed("0 3 * * *");
    const auto z = zone("UTC");
    const auto next =
      schedule::next_run(s, z, Jitter{}, at("2026-01-01T03:00:00Z"), at("2026-01-05T12:00:00Z"));
    CHECK(schedule::format_utc(*next) == "2026-01-02T03:00:00Z");
  }
}

TEST_SUITE("schedule::longest_gap")
{
  TEST_CASE("longest gaps match the hand-computed table")
  {
    struct Gap
    {
      const char* schedule;
      const char* zone;
      std::chrono::seconds gap;
    };
    const std::vector<Gap> gaps = {
      { "every 7d", "Europe/Berlin", 7 * 24h },
      { "every 90m", "UTC", 90min },
      { "*/15 * * * *", "UTC", 15min },
      { "0 3 * * *", "UTC", 24h },
      // The fall-back night makes one day 25 hours long.
      { "0 3 * * *", "Europe/Berlin", 25h },
      { "30 2 * * *", "Europe/Berlin", 25h },
      { "30 1 * * *", "America/New_York", 25h },
      // Real time: every real hour, both passes of the repeated one included.
      { "0 * * * *", "Europe/Berlin", 1h },
      { "0 9 * * 1-5", "UTC", 3 * 24h },
      { "0 12 * * 1", "America/New_York", 7 * 24h + 1h },
      // Aug 31 -> Oct 31.
      { "0 0 31 * *", "UTC", 61 * 24h },
      // 2096-02-29 -> 2104-02-29: 2100 is not a leap year.
      { "0 12 29 2 *", "UTC", 2921 * 24h },
      // 2088-02-29 (Sunday) -> 2116-02-29 (Saturday).
      { "0 12 29 2 */6", "UTC", 10226 * 24h },
      { "0 0 1 1 *", "UTC", 366 * 24h },
      { "0 0 1 * 1", "UTC", 7 * 24h },
      // 22:00 to 02:00 the next day.
      { "0 2,22 * * *", "UTC", 20h },
    };
    const Instant from = at("2026-01-01T00:00:00Z");
    for (const auto& g : gaps) {
      INFO(g.schedule, " in ", g.zone);
      CHECK(schedule::longest_gap(parsed(g.schedule), zone(g.zone), from) == g.gap);
    }
  }
}

TEST_SUITE("schedule::Schedule")
{
  TEST_CASE("every takes a duration of at least a minute")
  {
    CHECK(parsed("every 7d").interval() == std::chrono::seconds(7 * 86400));
    CHECK_FALSE(parsed("0 3 * * *").interval());
    const auto zero = Schedule::parse("every 0s");
    REQUIRE_FALSE(zero.has_value());
    CHECK(zero.error().message == "expected an interval of at least 1m, found \"every 0s\"");
    const auto bad = Schedule::parse("every soon");
    REQUIRE_FALSE(bad.has_value());
    CHECK(
      bad.error().message ==
      "expected 'every <duration>' with a duration such as 15m, 24h or 7d, found \"every soon\"");
    const auto word = Schedule::parse("weekly");
    REQUIRE_FALSE(word.has_value());
    CHECK(word.error().message ==
          "expected a 5-field cron line or 'every <duration>', found \"weekly\" (1 field)");
  }
}

TEST_SUITE("schedule::Zone")
{
  TEST_CASE("unknown zone names are errors that quote the name")
  {
    for (const char* name : { "Mars/Olympus", "", "../../etc/passwd", "/etc/localtime" }) {
      const auto z = Zone::locate(name);
      REQUIRE_FALSE(z.has_value());
      CHECK(z.error().message == std::string("expected an IANA time zone name such as "
                                             "Europe/Berlin or UTC, found \"") +
                                   name + "\"");
    }
  }

  TEST_CASE("local times carry the zone's abbreviation")
  {
    CHECK(zone("Europe/Berlin").format_local(at("2026-03-29T01:00:00Z")) ==
          "2026-03-29 03:00:00 CEST");
    CHECK(zone("America/New_York").format_local(at("2026-11-01T06:30:00Z")) ==
          "2026-11-01 01:30:00 EST");
  }

  TEST_CASE("formatting agrees with date::format from 1900 to 2200 and past year 9999")
  {
    // An odd stride (about 11.6 days plus 1 h 1 min 1 s) walks through every hour,
    // minute, second and offset change of these zones, half-hour ones included.
    std::vector<Instant> instants;
    for (auto t = at("1900-01-01T00:00:00Z"); t < at("2200-01-01T00:00:00Z");
         t += std::chrono::seconds(1'000'000 + 3661)) {
      instants.push_back(t);
    }
    instants.push_back(Instant{ date::sys_days{ date::year{ 10000 } / 1 / 1 } });
    instants.push_back(Instant{ date::sys_days{ date::year{ -1 } / 12 / 31 } });
    for (const char* name :
         { "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata" }) {
      const auto z = zone(name);
      for (const auto t : instants) {
        CHECK(z.format_local(t) == date::format("%F %T %Z", date::make_zoned(&z.tz(), t)));
        CHECK(schedule::format_utc(t) == date::format("%FT%TZ", t));
      }
    }
  }

  TEST_CASE("RFC 3339 instants parse with Z or an offset, and nothing else")
  {
    CHECK(schedule::format_utc(at("2026-03-29T03:00:00+02:00")) == "2026-03-29T01:00:00Z");
    CHECK(schedule::format_utc(at("2026-03-29T01:00:00Z")) == "2026-03-29T01:00:00Z");
    for (const char* bad : { "2026-03-29", "2026-03-29T01:00:00", "2026-13-29T01:00:00Z",
                             "2026-03-29T01:00:00.5Z", "yesterday" }) {
      INFO(bad);
      CHECK_FALSE(schedule::parse_rfc3339(bad).has_value());
    }
  }
}
