#pragma once

#include "config/config.hpp"
#include "rotation/pass.hpp"
#include "util/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

// The daemon's one port onto the rotation engine: what the scheduler, the pass queue and
// the control socket need, and nothing else. The daemon (service::Daemon) is written
// against this, so its unit tests drive a fake and the real binary drives the engine.
namespace service {

using Time = rotation::Time;

// One configured slot and when it is next due, from the engine's one `next_due` rule
// (schedule + jitter from the last rotation, overridden by the state's next_due, pushed
// out by backoff_until). May be <= now: the slot is due (or overdue).
struct SlotDue
{
  std::string slot; // "controller/user" as config::User::slot()
  std::string controller;
  std::string user;
  Time due;
};

// The next runs of one slot (the `plan` answer).
struct SlotPlan
{
  std::string slot;
  std::string schedule;
  std::string timezone;
  std::vector<Time> runs;
};

// One config snapshot's engine. Lives until the daemon swaps configs (between passes).
class Rotator
{
public:
  virtual ~Rotator() = default;

  // One pass. `request.controller` names the lane; passes of different lanes may run at
  // once, never two of one lane (the daemon's queue sees to that).
  virtual boost::asio::awaitable<rotation::PassResult> run(rotation::PassRequest request,
                                                           rotation::PassObserver* observer) = 0;
  // Cooperative stop of the running passes: they return early with `stopped` set once
  // their in-flight attempts reached a persisted state.
  virtual void request_stop() = 0;

  // Each configured slot with its next due time, read from the state now.
  virtual util::Result<std::vector<SlotDue>> due(Time now) = 0;
  // The next `count` runs of every configured slot.
  virtual std::vector<SlotPlan> plan(int count, Time now) = 0;
};

// Makes the engine for a config snapshot (at start-up and on each reload). Errors of kind
// "config" reject a reload (a recipient key that does not parse, a sink that cannot be made).
using RotatorFactory =
  std::function<util::Result<std::unique_ptr<Rotator>>(std::shared_ptr<const config::Config>)>;

} // namespace service
