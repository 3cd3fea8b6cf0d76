#include "service/scheduler.hpp"

#include "schedule/jitter.hpp"

#include <algorithm>

namespace service {

Time
run_at(std::string_view slot, Time due, Time epoch, std::chrono::seconds spread,
       std::optional<Time> hold)
{
  Time at = due;
  if (due < epoch) {
    at = epoch;
    if (spread.count() > 0) {
      at += std::chrono::seconds(static_cast<std::int64_t>(
        schedule::stable_hash(slot) % static_cast<std::uint64_t>(spread.count())));
    }
  }
  if (hold && *hold > at) {
    at = *hold;
  }
  return at;
}

std::chrono::seconds
sleep_for(Time now, std::optional<Time> next, std::chrono::seconds cap)
{
  if (!next) {
    return cap;
  }
  const auto d = *next - now;
  return std::clamp(d, std::chrono::seconds{ 0 }, cap);
}

bool
clock_jumped_forward(std::chrono::seconds wall_elapsed, std::chrono::seconds steady_elapsed,
                     std::chrono::seconds slack)
{
  return wall_elapsed - steady_elapsed > slack;
}

Wake
plan_wake(const std::vector<SlotDue>& table, Time now, Time epoch, std::chrono::seconds spread,
          const std::map<std::string, Time>& holds)
{
  Wake w;
  for (const auto& s : table) {
    const auto h = holds.find(s.slot);
    const auto at = run_at(s.slot, s.due, epoch, spread,
                           h == holds.end() ? std::nullopt : std::optional<Time>(h->second));
    if (at <= now) {
      w.due[s.controller].push_back(s.slot);
    } else if (!w.next || at < *w.next) {
      w.next = at;
    }
  }
  return w;
}

} // namespace service
