#include "schedule/zone.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/core.h>

#include <array>
#include <optional>
#include <sstream>
#include <stdexcept>

// The Debian package's CMake target defines this; without it date would try to download
// the database at run time instead of reading tzdata's /usr/share/zoneinfo.
#if !USE_OS_TZDB
#error "schedule/ needs date built with USE_OS_TZDB=1 (the OS tzdb in /usr/share/zoneinfo)"
#endif

namespace schedule {

namespace {

// "YYYY-MM-DD", then `sep`, then "HH:MM:SS", then `suffix`, as date::format's "%F %T"
// prints them for years 0-9999; nullopt outside them. date::format builds an ostream
// per call, and even fmt::format parses its format string: a 10,000-slot plan formats
// 100,000 times, and digits written by hand cost a twentieth of date::format.
std::optional<std::string>
format_civil(std::chrono::seconds since_epoch, char sep, std::string_view suffix)
{
  const auto day = date::floor<date::days>(date::sys_seconds{ since_epoch });
  const date::year_month_day ymd{ day };
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) {
    return std::nullopt;
  }
  const auto secs = (date::sys_seconds{ since_epoch } - day).count();
  std::array<char, 19> buf{};
  const auto put = [&buf](std::size_t at, long value, std::size_t digits) {
    for (std::size_t i = digits; i > 0; --i) {
      buf[at + i - 1] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  put(0, year, 4);
  buf[4] = '-';
  put(5, static_cast<unsigned>(ymd.month()), 2);
  buf[7] = '-';
  put(8, static_cast<unsigned>(ymd.day()), 2);
  buf[10] = sep;
  put(11, secs / 3600, 2);
  buf[13] = ':';
  put(14, secs / 60 % 60, 2);
  buf[16] = ':';
  put(17, secs % 60, 2);
  std::string out;
  out.reserve(buf.size() + suffix.size());
  out.append(buf.data(), buf.size());
  out.append(suffix);
  return out;
}

} // namespace

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
  const auto info = m_zone->get_info(t);
  if (auto s = format_civil(t.time_since_epoch() + info.offset, ' ', " " + info.abbrev)) {
    return std::move(*s);
  }
  const auto zt = date::make_zoned(m_zone, t);
  return date::format("%F %T %Z", zt);
}

std::string
format_utc(Instant t)
{
  if (auto s = format_civil(t.time_since_epoch(), 'T', "Z")) {
    return std::move(*s);
  }
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
