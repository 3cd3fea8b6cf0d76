#pragma once

#include "util/clock.hpp"
#include "util/error.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace schedule {

// One type for a wall-clock instant across the daemon (util::Time).
using Instant = util::Time;

// An IANA time zone from the OS database (/usr/share/zoneinfo, tzdata). Cheap to copy:
// the zone data lives in date's process-wide database.
class Zone
{
public:
  // The zone named `name` ("Europe/Berlin", "UTC"); an error of kind "config" for an
  // unknown name, saying what was expected.
  static util::Result<Zone> locate(std::string_view name);

  [[nodiscard]] const std::string& name() const { return m_name; }
  [[nodiscard]] const date::time_zone& tz() const { return *m_zone; }

  // "2026-03-29 03:17:02 CEST": the wall-clock time and abbreviation in this zone.
  [[nodiscard]] std::string format_local(Instant t) const;

private:
  Zone(std::string name, const date::time_zone* zone)
    : m_name(std::move(name))
    , m_zone(zone)
  {
  }

  std::string m_name;
  const date::time_zone* m_zone;
};

// "2026-03-29T01:17:02Z" (RFC 3339, UTC).
std::string format_utc(Instant t);

// Parses an RFC 3339 instant with a 'Z' or ±HH:MM offset ("2026-03-29T01:17:02Z");
// fractional seconds are not accepted. An error of kind "parse" otherwise.
util::Result<Instant> parse_rfc3339(std::string_view text);

} // namespace schedule
