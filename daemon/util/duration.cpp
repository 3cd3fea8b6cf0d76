#include "util/duration.hpp"

#include <fmt/core.h>

#include <cstdint>
#include <limits>

namespace util {

namespace {

constexpr std::int64_t k_minute = 60;
constexpr std::int64_t k_hour = 60 * k_minute;
constexpr std::int64_t k_day = 24 * k_hour;
constexpr std::int64_t k_week = 7 * k_day;
// A bound far beyond any sane schedule keeps the arithmetic clear of overflow.
constexpr std::int64_t k_max_seconds = 100LL * 366 * k_day;

std::int64_t
unit_seconds(char unit)
{
  switch (unit) {
    case 's':
      return 1;
    case 'm':
      return k_minute;
    case 'h':
      return k_hour;
    case 'd':
      return k_day;
    case 'w':
      return k_week;
    default:
      return 0;
  }
}

} // namespace

Result<Seconds>
parse_duration(std::string_view text)
{
  const auto bad = [&] {
    return make_error("parse", "expected a duration such as 90s, 15m, 24h, 7d or 1h30m");
  };
  if (text.empty()) {
    return bad();
  }
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t number = 0;
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      number = number * 10 + (text[i] - '0');
      if (number > k_max_seconds) {
        return make_error("parse", "duration is too long (at most 100 years)");
      }
      ++i;
    }
    if (i == start || i == text.size()) {
      return bad();
    }
    const std::int64_t unit = unit_seconds(text[i]);
    if (unit == 0) {
      return bad();
    }
    ++i;
    total += number * unit;
    if (total > k_max_seconds) {
      return make_error("parse", "duration is too long (at most 100 years)");
    }
  }
  return Seconds(total);
}

std::string
format_duration(Seconds d)
{
  std::int64_t s = d.count();
  if (s == 0) {
    return "0s";
  }
  std::string out;
  if (s < 0) {
    out = "-";
    s = -s;
  }
  for (const auto& [unit, suffix] :
       { std::pair{ k_day, 'd' }, std::pair{ k_hour, 'h' }, std::pair{ k_minute, 'm' },
         std::pair{ std::int64_t{ 1 }, 's' } }) {
    if (s >= unit) {
      out += fmt::format("{}{}", s / unit, suffix);
      s %= unit;
    }
  }
  return out;
}

} // namespace util
