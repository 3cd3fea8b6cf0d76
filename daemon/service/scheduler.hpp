#pragma once

#include "service/rotator.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// When the daemon wakes and what it asks for (DESIGN §7a, §8): pure functions of the due
// table and the wall clock, so they are unit-tested without waiting. The daemon keeps one
// timer and calls these on every wake.
namespace service {

// The daemon never sleeps longer than this: a suspend or a clock step is noticed within it.
constexpr std::chrono::seconds k_max_sleep{ 60 };

// A slot retried this soon at the earliest after a pass left it due (controller down, an
// error without backoff): the schedule never spins on a slot that cannot make progress.
constexpr std::chrono::seconds k_retry_floor{ 60 };

// When a slot runs. A slot that fell due before `epoch` (the instant the daemon started or
// noticed a clock jump, i.e. the end of a downtime) runs at a fixed point of
// [epoch, epoch + spread) chosen by schedule::stable_hash (the jitter's hash: the same on
// every machine and restart, so a slot's catch-up point does not move): overdue slots are spread,
// never a herd. `hold`: not before this instant (k_retry_floor after a pass that left it due).
Time run_at(std::string_view slot, Time due, Time epoch, std::chrono::seconds spread,
            std::optional<Time> hold = std::nullopt);

// How long to sleep at `now` when the next thing to do is at `next` (nullopt: nothing
// planned): until then, at most `cap`, never negative.
std::chrono::seconds sleep_for(Time now, std::optional<Time> next,
                               std::chrono::seconds cap = k_max_sleep);

// Whether the wall clock moved more than `slack` further than the steady clock between two
// wakes (a suspend or a clock step forward): the downtime that makes overdue slots spread.
bool clock_jumped_forward(std::chrono::seconds wall_elapsed, std::chrono::seconds steady_elapsed,
                          std::chrono::seconds slack = std::chrono::seconds{ 90 });

// The due table at one moment: the slots to run now, per controller lane, and the next
// instant anything else falls due.
struct Wake
{
  std::map<std::string, std::vector<std::string>> due; // controller -> slots
  std::optional<Time> next;
};

// Which slots of `table` run at `now` (run_at <= now), given the epoch, the spread and the
// holds the daemon keeps per slot.
Wake plan_wake(const std::vector<SlotDue>& table, Time now, Time epoch, std::chrono::seconds spread,
               const std::map<std::string, Time>& holds);

} // namespace service
