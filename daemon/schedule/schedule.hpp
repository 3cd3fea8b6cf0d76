#pragma once

#include "schedule/cron.hpp"
#include "schedule/jitter.hpp"
#include "schedule/zone.hpp"
#include "util/error.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// When slots run (DESIGN §2.3, §8): pure functions of the schedule, the zone, the slot's
// jitter, the previous run and the current time. Nothing here reads a clock.
namespace schedule {

// `every <duration>` or a 5-field cron line, as written in the config.
class Schedule
{
public:
  // Parses "every 7d" or "0 3 * * 1"; the error (kind "parse") says what was expected.
  static util::Result<Schedule> parse(std::string_view text);

  [[nodiscard]] const std::string& text() const { return m_text; }
  // The interval of an `every` schedule; nullopt for cron.
  [[nodiscard]] std::optional<std::chrono::seconds> interval() const { return m_interval; }
  [[nodiscard]] const std::optional<Cron>& cron() const { return m_cron; }

private:
  std::string m_text;
  std::optional<std::chrono::seconds> m_interval;
  std::optional<Cron> m_cron;
};

// The slot's next run. May be ≤ now: the slot is overdue (after downtime) and due at once.
// - every D: last + D. Without a last run, the first instant ≥ now whose epoch second is
//   ≡ jitter.offset (mod jitter.span): within one span of now, spread across slots, and
//   the same answer for every `now` until it passes, so a caller that re-evaluates on
//   each wake-up does not push it back (with no jitter: now).
// - cron: the first cron time c (local to `zone`, DST per DESIGN §8) with
//   c + jitter.offset > last, or without a last run ≥ now.
// nullopt only when a cron line never matches (Schedule::parse rejects those).
std::optional<Instant> next_run(const Schedule& schedule, const Zone& zone, const Jitter& jitter,
                                std::optional<Instant> last, Instant now);

// The first cron time strictly after `after` in `zone`, without jitter (DESIGN §8):
// - a time in a skipped hour (spring forward) runs once, at the end of the gap;
// - a time in a repeated hour (fall back) runs once, at its first occurrence;
// - with a '*'-based hour field the line follows real time instead: skipped times do not
//   run, and both passes of a repeated hour run (`0 * * * *` runs every real hour).
std::optional<Instant> next_cron_time(const Cron& cron, const Zone& zone, Instant after);

// The longest time between two consecutive runs, for the lifetime rule (DESIGN §2.3).
// every D: D. Cron: the longest local-time gap over the whole 400-year Gregorian cycle
// (`0 0 29 2 *` has 8 years across 2100), and the exact real-time gap of every pair of
// runs around an offset change of the zone in the 28 years from `from` (a daily run
// across a fall-back night is 25 h apart).
std::chrono::seconds longest_gap(const Schedule& schedule, const Zone& zone, Instant from);

} // namespace schedule
