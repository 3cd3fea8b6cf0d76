#pragma once

#include "rotation/pass.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

// The daemon's pass queue (DESIGN §7a): one pass at a time per controller lane, lanes
// independent; requests from the timer, signals and the control socket merge into the
// lane's next pass. Pure bookkeeping (no io), so the merging rules are unit-tested.
namespace service {

using WaiterId = std::uint64_t;

// What someone asks of one lane.
struct Ask
{
  enum class Kind
  {
    full,   // resume, reconcile, rotate the due slots, prune (start-up, after a reload)
    resume, // resume open attempts only (the first pass after start-up)
    rotate, // `slots`, or every slot of the lane with `force`, due or not
    prune
  };
  Kind kind = Kind::rotate;
  bool force = false;
  std::set<std::string> slots;
  std::optional<WaiterId> waiter; // told when the pass that serves it returns
  // rotate: the scheduler's ask: `slots` rotate only if still due when the pass reaches
  // them (PassRequest::if_due), so a slot another pass rotated meanwhile is not rotated
  // twice. An explicit ask (false) forces its slots and absorbs a scheduled ask for them.
  bool if_due = false;
};

class PassQueue
{
public:
  // Queues `ask` on `lane`, merged with what is pending there: a slot already queued is
  // not queued twice, and a slot in the lane's running pass is not queued again: its
  // waiter waits for that pass instead. Returns how many passes the waiter now waits for
  // (0: nothing to wait for, 1 or 2: the running pass and/or the pending one).
  int add(const std::string& lane, const Ask& ask);

  // The next pass of an idle lane with work pending (nullopt: busy or nothing to do); the
  // lane is busy from now until finish(). Order: resume, rotate, full, prune.
  std::optional<rotation::PassRequest> start(const std::string& lane);

  // The lane's running pass returned: the waiters it served.
  std::vector<WaiterId> finish(const std::string& lane);

  [[nodiscard]] bool running(const std::string& lane) const;
  [[nodiscard]] bool pending(const std::string& lane) const;
  [[nodiscard]] bool all_idle() const;
  [[nodiscard]] std::vector<std::string> running_lanes() const;
  // Whether `slot` is queued or in flight on `lane` (scheduled asks included).
  [[nodiscard]] bool has(const std::string& lane, const std::string& slot) const;

  // Drops everything pending (stop, a lane removed by a reload): the waiters to answer.
  std::vector<WaiterId> drop_pending();
  std::vector<WaiterId> drop_lane(const std::string& lane);
  [[nodiscard]] std::vector<std::string> lanes() const;

private:
  struct Pending
  {
    bool resume = false;
    bool full = false;
    bool prune = false;
    bool force = false;
    std::set<std::string> slots;
    std::set<std::string> if_due; // disjoint from `slots`
    std::vector<std::pair<WaiterId, Ask::Kind>> waiters;
    [[nodiscard]] bool empty() const
    {
      return !resume && !full && !prune && !force && slots.empty() && if_due.empty();
    }
  };
  struct Running
  {
    rotation::PassRequest request;
    bool force = false;
    std::set<std::string> slots;
    std::set<std::string> if_due;
    std::vector<WaiterId> waiters;
    [[nodiscard]] bool forces(const std::string& slot) const
    {
      return force || slots.count(slot) > 0;
    }
  };
  struct Lane
  {
    Pending pending;
    std::optional<Running> running;
  };
  std::map<std::string, Lane> m_lanes;
};

} // namespace service
