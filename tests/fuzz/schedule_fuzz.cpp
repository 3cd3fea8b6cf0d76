// The schedule parsers on arbitrary text: schedule::Schedule::parse ("every D" or a 5-field
// cron line) and util::parse_duration. What parses is then evaluated: the next run in UTC
// and in a zone with DST, around a spring-forward night. Oracles: no crash or exception;
// a parsed duration is positive-or-zero and formats to text that parses back to itself; a
// parsed cron line has a next run (parse refuses lines that never match) and a second,
// strictly later one.
#include "schedule/schedule.hpp"
#include "schedule/zone.hpp"
#include "util/duration.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

const schedule::Zone&
zone(std::string_view name)
{
  // Both zones exist in every tzdata; a failure is a broken machine, not a finding.
  static const schedule::Zone utc = schedule::Zone::locate("UTC").value();
  static const schedule::Zone berlin = schedule::Zone::locate("Europe/Berlin").value();
  return name == "UTC" ? utc : berlin;
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (const auto d = util::parse_duration(text)) {
    const auto formatted = util::format_duration(*d);
    const auto back = util::parse_duration(formatted);
    if (d->count() < 0 || !back || *back != *d) {
      std::abort();
    }
  }

  const auto parsed = schedule::Schedule::parse(text);
  if (!parsed) {
    return 0;
  }
  // 2026-03-29 00:30 UTC: an hour before Berlin skips 02:00-03:00.
  const schedule::Instant now{ std::chrono::seconds{ 1774744200 } };
  const schedule::Jitter jitter{ std::chrono::seconds{ 3600 }, std::chrono::seconds{ 1234 } };
  for (const auto name : { "UTC", "Europe/Berlin" }) {
    const auto& z = zone(name);
    const auto first = schedule::next_run(*parsed, z, jitter, std::nullopt, now);
    if (!first) {
      std::abort();
    }
    // Every parsed line runs again, strictly later (the search once stopped at 9 years,
    // and '*'-based day fields can be 28 years apart: Feb 29 on a weekend).
    const auto second = schedule::next_run(*parsed, z, jitter, first, *first);
    if (!second || (parsed->cron() && *second <= *first) ||
        (parsed->interval() && parsed->interval()->count() > 0 && *second <= *first)) {
      std::abort();
    }
  }
  return 0;
}
