#pragma once

#include "service/rotator.hpp"
#include "util/clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

// The daemon's tests drive this Rotator: it commits what it is asked to, each lane's pass
// taking `lane_delay[lane]`, and records every request. A stop request cuts the delays short.
namespace service_test {

struct FakeWorld
{
  std::vector<service::SlotDue> table;
  std::map<std::string, std::chrono::milliseconds> lane_delay;
  std::vector<rotation::PassRequest> requests; // in the order the passes started
  std::vector<std::string> finished;           // lanes, in the order their passes returned
  int stop_requests = 0;
  int rotators_made = 0;
  // Set: `if_due` slots rotate only when their table entry is due by this clock, and a
  // commit moves the entry `period` on (as the engine's next_due would).
  const util::Clock* clock = nullptr;
  std::chrono::seconds period{ 0 };
  std::map<std::string, int> rotations; // per slot
};

class FakeRotator : public service::Rotator
{
public:
  FakeRotator(boost::asio::any_io_executor ex, FakeWorld& world)
    : m_ex(std::move(ex))
    , m_world(world)
  {
    ++m_world.rotators_made;
  }

  boost::asio::awaitable<rotation::PassResult> run(rotation::PassRequest request,
                                                   rotation::PassObserver* observer) override
  {
    m_world.requests.push_back(request);
    const auto lane = request.controller.value_or("");
    auto timer = std::make_shared<boost::asio::steady_timer>(m_ex);
    m_timers.insert(timer);
    timer->expires_after(m_world.lane_delay.count(lane) ? m_world.lane_delay.at(lane)
                                                        : std::chrono::milliseconds(0));
    co_await timer->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    m_timers.erase(timer);
    rotation::PassResult r;
    r.stopped = m_stop;
    // A full pass rotates what is due by the clock (when the world has one).
    const bool full = request.kind == rotation::PassKind::full && m_world.clock != nullptr;
    if (request.kind == rotation::PassKind::rotate || full) {
      for (auto& s : m_world.table) {
        const bool named =
          std::find(request.slots.begin(), request.slots.end(), s.slot) != request.slots.end();
        const bool if_due = (full || std::find(request.if_due.begin(), request.if_due.end(),
                                               s.slot) != request.if_due.end()) &&
                            (m_world.clock == nullptr || s.due <= m_world.clock->now());
        if (s.controller == lane && (named || if_due || request.force)) {
          ++m_world.rotations[s.slot];
          if (m_world.clock != nullptr && m_world.period.count() > 0) {
            s.due = m_world.clock->now() + m_world.period;
          }
          rotation::SlotReport rep;
          rep.controller = s.controller;
          rep.user = s.user;
          rep.result = rotation::SlotResult::committed;
          rep.new_token = "fake-" + std::to_string(m_world.requests.size());
          if (observer != nullptr) {
            observer->on_slot(rep);
          }
          r.slots.push_back(rep);
        }
      }
    }
    m_world.finished.push_back(lane);
    co_return r;
  }

  void request_stop() override
  {
    m_stop = true;
    ++m_world.stop_requests;
    for (const auto& t : m_timers) {
      t->cancel();
    }
  }

  util::Result<std::vector<service::SlotDue>> due(service::Time /*now*/) override
  {
    return m_world.table;
  }

  std::vector<service::SlotPlan> plan(int /*count*/, service::Time /*now*/) override { return {}; }

private:
  boost::asio::any_io_executor m_ex;
  FakeWorld& m_world;
  std::set<std::shared_ptr<boost::asio::steady_timer>> m_timers;
  bool m_stop = false;
};

} // namespace service_test
