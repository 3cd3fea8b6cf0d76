#include "schedule/zone.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/core.h>

#include <sstream>
#include <stdexcept>

// The Debian package's CMake target defines this; without it date would try to download
// the database at run time instead of reading tzdata's /usr/share/zoneinfo.
#if !USE_OS_TZDB
#error "schedule/ needs date built with USE_OS_TZDB=1 (the OS tzdb in /usr/share/zoneinfo)"
#endif

namespace schedule {

util::Result<Zone>
Zone::locate(std::string_view name)
{
  const auto bad = [&] {
    std::string shown(name.substr(0, 60));
    return util::make_error("config", fmt::format("expected an IANA time zone name such as "
                                                  "Europe/Berlin or UTC, found \"{}\"",
                                                  shown));
  };
  // A name is a path below /usr/share/zoneinfo: refuse anything that is not a plain one
  // ("../", absolute paths) before the library opens files.
  if (name.empty() || name.size() > 64 || name.front() == '/' ||
      name.find("..") != std::string_view::npos) {
    return bad();
  }
  try {
    const date::time_zone* zone = date::locate_zone(name);
    return Zone(std::string(name), zone);
  } catch (const std::runtime_error&) {
    // date throws for a name it does not know: an expected failure, answered as a value.
    return bad();
  }
}

std::string
Zone::format_local(Instant t) const
{
  const auto zt = date::make_zoned(m_zone, t);
  return date::format("%F %T %Z", zt);
}

std::string
format_utc(Instant t)
{
  return date::format("%FT%TZ", t);
}

util::Result<Instant>
parse_rfc3339(std::string_view text)
{
  const auto bad = [&] {
    return util::make_error("parse",
                            fmt::format("expected an RFC 3339 time such as 2026-03-29T01:00:00Z, "
                                        "found \"{}\"",
                                        text.substr(0, 60)));
  };
  // "YYYY-MM-DDTHH:MM:SS" then 'Z' or ±HH:MM: checked by shape first, so date::parse
  // never sees a partial match it would accept.
  if (text.size() != 20 && text.size() != 25) {
    return bad();
  }
  Instant t;
  std::istringstream in{ std::string(text) };
  if (text.size() == 20) {
    if (text[19] != 'Z' && text[19] != 'z') {
      return bad();
    }
    in >> date::parse("%Y-%m-%dT%H:%M:%S", t);
  } else {
    in >> date::parse("%Y-%m-%dT%H:%M:%S%Ez", t);
  }
  if (in.fail()) {
    return bad();
  }
  return t;
}

} // namespace schedule
