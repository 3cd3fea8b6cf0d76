#include "schedule/schedule.hpp"

#include "util/duration.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

namespace schedule {

namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// Most lines match within 8 years (Feb 29 across 2100): the search first looks 9 years
// ahead, then up to twice the line's longest gap over the Gregorian cycle, which a rare
// day needs ("0 0 29 2 */6", Feb 29 on a weekend: 16 years; on a Sunday, 40 across 2100).
constexpr int k_first_search_days = 9 * 366;
// The Gregorian calendar, weekdays included, repeats every 400 years = 146,097 days.
constexpr int k_cycle_days = 146097;
// Offset changes within this horizon are examined exactly for longest_gap: it covers the
// 28-year cycle of weekdays and dates that repeats between century years.
constexpr auto k_dst_horizon = date::years(28);

// Where one local time lands in real time (DESIGN §8).
struct Landing
{
  bool runs = false;
  Instant first;  // the earliest instant: monotonic in the local time
  Instant second; // a later second pass (repeated hour, '*' hours), else == first
};

Landing
land(const date::time_zone& tz, date::local_seconds lt, bool wildcard_hour)
{
  const auto info = tz.get_info(lt);
  const auto at = [&](seconds offset) { return Instant{ lt.time_since_epoch() - offset }; };
  switch (info.result) {
    case date::local_info::unique:
      return Landing{ true, at(info.first.offset), at(info.first.offset) };
    case date::local_info::nonexistent:
      if (wildcard_hour) {
        return Landing{}; // real time simply has no such minute
      }
      // Runs once, right after the jump: every skipped time lands on the same instant.
      return Landing{ true, info.second.begin, info.second.begin };
    case date::local_info::ambiguous:
      return Landing{ true, at(info.first.offset),
                      wildcard_hour ? at(info.second.offset) : at(info.first.offset) };
  }
  return Landing{};
}

bool
day_matches(const Cron& cron, date::sys_days day)
{
  const date::year_month_day ymd{ day };
  const date::weekday wd{ day };
  return cron.day_matches(static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                          wd.c_encoding());
}

// The longest distance in days between consecutive matching days over the Gregorian
// cycle (wrapping around). Cached by the day fields: configs repeat a few patterns.
int
longest_day_gap(const Cron& cron)
{
  static std::mutex mutex;
  static std::map<std::string, int> cache;
  const std::lock_guard lock(mutex);
  const auto key = cron.day_key();
  if (const auto it = cache.find(key); it != cache.end()) {
    return it->second;
  }
  const date::sys_days start = date::year{ 2000 } / 1 / 1;
  int first = -1;
  int previous = -1;
  int longest = 0;
  for (int i = 0; i < k_cycle_days; ++i) {
    if (!day_matches(cron, start + date::days(i))) {
      continue;
    }
    if (first < 0) {
      first = i;
    } else {
      longest = std::max(longest, i - previous);
    }
    previous = i;
  }
  if (first >= 0) {
    longest = std::max(longest, first + k_cycle_days - previous);
  }
  cache.emplace(key, longest);
  return longest;
}

} // namespace

util::Result<Schedule>
Schedule::parse(std::string_view text)
{
  Schedule s;
  s.m_text = std::string(text);
  if (text.starts_with("every ") || text == "every") {
    auto rest = text.substr(std::min<std::size_t>(text.size(), 6));
    while (!rest.empty() && rest.front() == ' ') {
      rest.remove_prefix(1);
    }
    const auto d = util::parse_duration(rest);
    if (!d) {
      return util::make_error("parse",
                              fmt::format("expected 'every <duration>' with a duration such as "
                                          "15m, 24h or 7d, found \"{}\"",
                                          text.substr(0, 60)));
    }
    // Cron cannot run more often either; shorter would mint tokens faster than Jenkins
    // can be asked to in a large config.
    if (*d < minutes(1)) {
      return util::make_error(
        "parse", fmt::format("expected an interval of at least 1m, found \"{}\"", text));
    }
    s.m_interval = *d;
    return s;
  }
  auto cron = Cron::parse(text);
  if (!cron) {
    return cron.error();
  }
  s.m_cron = *cron;
  return s;
}

std::optional<Instant>
next_cron_time(const Cron& cron, const Zone& zone, Instant after)
{
  const auto& tz = zone.tz();
  // A local time lt can land after `after` only if lt > after + offset for an offset in
  // force at or after `after`: start the local scan at the smaller of the current and
  // the next offset, so the second pass of a repeated hour is not missed.
  const auto info = tz.get_info(after);
  auto offset = info.offset;
  if (info.end < Instant::max()) {
    offset = std::min(offset, tz.get_info(info.end).offset);
  }
  const auto start = date::floor<minutes>(date::local_seconds{ after.time_since_epoch() + offset });
  const auto first_day = date::floor<date::days>(start);
  const int start_minute = static_cast<int>((start - first_day).count());
  const auto& times = cron.times_of_day();
  const bool wildcard = cron.hour_wildcard();

  std::optional<Instant> best;
  int limit = k_first_search_days;
  bool extended = false;
  for (int i = 0;; ++i) {
    if (i == limit) {
      if (best || extended) {
        break;
      }
      // Twice the gap: a matching day may still not run (its only times skipped by DST).
      limit = std::max(limit, 2 * longest_day_gap(cron) + 2);
      extended = true;
      if (i == limit) {
        break;
      }
    }
    const auto day = first_day + date::days(i);
    if (!day_matches(cron, date::sys_days{ day.time_since_epoch() })) {
      continue;
    }
    for (const int t : times) {
      if (i == 0 && t < start_minute) {
        continue;
      }
      const auto landing = land(tz, date::local_seconds{ day + minutes(t) }, wildcard);
      if (!landing.runs) {
        continue;
      }
      // First landings never decrease with the local time: nothing later can beat `best`.
      if (best && landing.first >= *best) {
        return best;
      }
      if (landing.first > after) {
        best = landing.first;
      } else if (landing.second > after && (!best || landing.second < *best)) {
        best = landing.second;
      }
    }
  }
  return best;
}

std::optional<Instant>
next_run(const Schedule& schedule, const Zone& zone, const Jitter& jitter,
         std::optional<Instant> last, Instant now)
{
  if (const auto interval = schedule.interval()) {
    if (last) {
      return *last + *interval;
    }
    if (jitter.span.count() <= 0) {
      return now;
    }
    const auto span = jitter.span.count();
    const auto phase =
      ((jitter.offset.count() - now.time_since_epoch().count()) % span + span) % span;
    return now + seconds(phase);
  }
  const auto& cron = *schedule.cron();
  // c + offset > last  ⇔  c > last - offset;  c + offset ≥ now  ⇔  c > now - offset - 1s.
  const Instant after = last ? *last - jitter.offset : now - jitter.offset - seconds(1);
  const auto c = next_cron_time(cron, zone, after);
  if (!c) {
    return std::nullopt;
  }
  return *c + jitter.offset;
}

seconds
longest_gap(const Schedule& schedule, const Zone& zone, Instant from)
{
  if (const auto interval = schedule.interval()) {
    return *interval;
  }
  const auto& cron = *schedule.cron();
  const auto& times = cron.times_of_day();
  int longest_minutes = 0;
  for (std::size_t i = 1; i < times.size(); ++i) {
    longest_minutes = std::max(longest_minutes, times[i] - times[i - 1]);
  }
  // From the last run of one matching day to the first of the next.
  longest_minutes =
    std::max(longest_minutes, longest_day_gap(cron) * 24 * 60 - (times.back() - times.front()));
  seconds longest = minutes(longest_minutes);

  // Pairs of runs around an offset change: computed exactly, run by run.
  const auto& tz = zone.tz();
  const Instant horizon = from + date::floor<seconds>(k_dst_horizon);
  auto info = tz.get_info(from);
  while (info.end < horizon) {
    const Instant change = info.end;
    const auto next = tz.get_info(change);
    if (next.offset != info.offset) {
      const auto shift =
        next.offset > info.offset ? next.offset - info.offset : info.offset - next.offset;
      // The run before the change is at most one local gap plus the shift before it.
      auto run = next_cron_time(cron, zone,
                                change - minutes(longest_minutes) - shift - std::chrono::hours(1));
      std::optional<Instant> before;
      while (run && *run < change) {
        before = run;
        run = next_cron_time(cron, zone, *run);
      }
      if (before && run) {
        longest = std::max(longest, *run - *before);
      }
    }
    info = next;
  }
  return longest;
}

} // namespace schedule
