#pragma once

#include "util/error.hpp"

#include <bitset>
#include <cstdint>
#include <string_view>
#include <vector>

namespace schedule {

// A parsed 5-field cron line (minute hour day-of-month month day-of-week), as Vixie
// cron reads it: lists, ranges, steps, month and weekday names (case-insensitive),
// 0 and 7 for Sunday. Times are local to the slot's zone; schedule::next_run maps them.
class Cron
{
public:
  // Parses `text`; the error (kind "parse") names the field and the value at fault.
  static util::Result<Cron> parse(std::string_view text);

  // Whether the calendar day matches. Vixie's rule: when both day-of-month and
  // day-of-week are restricted (neither starts with '*'), either one matching is enough.
  [[nodiscard]] bool day_matches(unsigned month, unsigned day, unsigned weekday) const;
  [[nodiscard]] bool minute(unsigned m) const { return m_minutes.test(m); }
  [[nodiscard]] bool hour(unsigned h) const { return m_hours.test(h); }
  // The matching minutes of the day (hour * 60 + minute), ascending. Computed once by
  // parse(): next_run asks for it on every call, 50,000 times for a 10,000-slot plan.
  [[nodiscard]] const std::vector<std::uint16_t>& times_of_day() const { return m_times; }
  // The hour field starts with '*': its runs follow real time across DST changes
  // (DESIGN §8), so both passes of a repeated hour run and skipped times are dropped.
  [[nodiscard]] bool hour_wildcard() const { return m_hour_star; }
  // True when some date in the Gregorian calendar matches (false for "0 0 30 2 *").
  [[nodiscard]] bool runs_at_all() const;
  // The day fields only (month, day-of-month, day-of-week and the OR rule), for caching
  // calendar scans that do not depend on the time of day.
  [[nodiscard]] std::string day_key() const;

private:
  std::bitset<60> m_minutes;
  std::bitset<24> m_hours;
  std::bitset<32> m_days;    // 1..31
  std::bitset<13> m_months;  // 1..12
  std::bitset<7> m_weekdays; // 0 = Sunday
  bool m_dom_star = true;
  bool m_dow_star = true;
  bool m_hour_star = true;
  std::vector<std::uint16_t> m_times;
};

} // namespace schedule
