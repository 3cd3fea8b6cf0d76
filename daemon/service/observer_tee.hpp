#pragma once

#include "rotation/pass.hpp"

#include <initializer_list>
#include <vector>

namespace service {

// Tells every observer it holds, in order, what a pass does: the daemon's own bookkeeping,
// the metrics and the notifier hear the same pass.
class ObserverTee final : public rotation::PassObserver
{
public:
  explicit ObserverTee(std::vector<rotation::PassObserver*> observers)
    : m_observers(std::move(observers))
  {
  }

  void on_slot(const rotation::SlotReport& report) override
  {
    for (auto* o : m_observers) {
      o->on_slot(report);
    }
  }
  void on_sink(const std::string& controller, const std::string& user, config::SinkType type,
               state::SinkOutcome outcome) override
  {
    for (auto* o : m_observers) {
      o->on_sink(controller, user, type, outcome);
    }
  }
  void on_revoke(const std::string& controller, const std::string& user,
                 rotation::RevokeReason reason, bool ok) override
  {
    for (auto* o : m_observers) {
      o->on_revoke(controller, user, reason, ok);
    }
  }
  void on_request(const std::string& controller, rotation::RequestOp op, int http_status,
                  std::chrono::milliseconds took) override
  {
    for (auto* o : m_observers) {
      o->on_request(controller, op, http_status, took);
    }
  }
  void on_controller(const std::string& controller, bool reachable, bool stale_database) override
  {
    for (auto* o : m_observers) {
      o->on_controller(controller, reachable, stale_database);
    }
  }
  void on_probe(const std::string& controller, const rotation::ControllerFacts& facts) override
  {
    for (auto* o : m_observers) {
      o->on_probe(controller, facts);
    }
  }
  void on_pass(const rotation::PassRequest& request, const rotation::PassResult& result) override
  {
    for (auto* o : m_observers) {
      o->on_pass(request, result);
    }
  }
  void on_admin_token(const std::string& controller, rotation::AdminTokenResult result) override
  {
    for (auto* o : m_observers) {
      o->on_admin_token(controller, result);
    }
  }
  void on_admin_token_age(const std::string& controller, rotation::Time since) override
  {
    for (auto* o : m_observers) {
      o->on_admin_token_age(controller, since);
    }
  }

private:
  std::vector<rotation::PassObserver*> m_observers;
};

} // namespace service
