#include "app/engine_rotator.hpp"

#include "app/engine.hpp"
#include "schedule/schedule.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

#include <chrono>
#include <map>
#include <set>
#include <utility>

namespace app {

namespace asio = boost::asio;
using rotation::PassKind;
using rotation::PassRequest;
using service::Time;

namespace {

rotation::SlotResult
parse_result(const std::string& text)
{
  using R = rotation::SlotResult;
  if (text == "committed") {
    return R::committed;
  }
  if (text == "delivering") {
    return R::delivering;
  }
  if (text == "failed") {
    return R::failed;
  }
  if (text == "abandoned") {
    return R::abandoned;
  }
  if (text == "not due") {
    return R::not_due;
  }
  return R::error;
}

rotation::RevokeReason
revoke_reason(state::PruneReason reason)
{
  switch (reason) {
    case state::PruneReason::retired:
      return rotation::RevokeReason::superseded;
    case state::PruneReason::expired:
      return rotation::RevokeReason::expired;
    case state::PruneReason::failed_mint:
      return rotation::RevokeReason::failed_attempt;
  }
  return rotation::RevokeReason::expired;
}

struct SlotSchedule
{
  const config::User* user = nullptr;
  std::string slot;
  schedule::Schedule schedule;
  schedule::Zone zone;
  schedule::Jitter jitter;
};

class EngineRotator : public service::Rotator
{
public:
  EngineRotator(asio::any_io_executor executor, std::shared_ptr<const config::Config> config,
                state::Store& store)
    : m_executor(std::move(executor))
    , m_config(std::move(config))
    , m_store(store)
  {
  }

  util::Result<void> init()
  {
    for (const auto& c : m_config->controllers) {
      auto lane = std::make_unique<Lane>();
      if (m_config->controllers.size() == 1) {
        lane->config = m_config; // no copy of a big config when there is one lane
      } else {
        auto sub = std::make_shared<config::Config>(*m_config);
        sub->controllers = { c };
        std::erase_if(sub->users, [&](const config::User& u) { return u.controller != c.name; });
        lane->config = std::move(sub);
      }
      auto engine = Engine::create(m_executor, *lane->config, m_store);
      if (!engine) {
        return engine.error();
      }
      lane->engine = std::move(*engine);
      m_lanes.emplace(c.name, std::move(lane));
    }
    for (const auto& u : m_config->users) {
      auto sched = schedule::Schedule::parse(u.policy.schedule);
      auto zone = schedule::Zone::locate(u.policy.timezone);
      if (!sched || !zone) {
        return util::make_error("config", fmt::format("{}: schedule or zone", u.slot()));
      }
      m_schedules.push_back(SlotSchedule{ &u, u.slot(), std::move(*sched), *zone,
                                          schedule::Jitter::for_slot(u.slot(), u.policy.jitter) });
    }
    return {};
  }

  asio::awaitable<rotation::PassResult> run(PassRequest request,
                                            rotation::PassObserver* observer) override
  {
    rotation::PassResult out;
    const auto started = std::chrono::steady_clock::now();
    for (auto& [name, lane] : m_lanes) {
      if (request.controller && *request.controller != name) {
        continue;
      }
      co_await run_lane(name, *lane, request, observer, out);
    }
    out.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
    if (observer != nullptr) {
      observer->on_pass(request, out);
    }
    co_return out;
  }

  // app::Engine has no stop: its passes run to the end (rotation::Engine brings it).
  void request_stop() override { m_stop = true; }

  util::Result<std::vector<service::SlotDue>> due(Time now) override
  {
    auto rows = m_store.slots();
    if (!rows) {
      return rows.error();
    }
    std::map<std::pair<std::string, std::string>, const state::Slot*> by_key;
    for (const auto& r : *rows) {
      by_key.emplace(std::make_pair(r.controller, r.user_key), &r);
    }
    std::vector<service::SlotDue> out;
    out.reserve(m_schedules.size());
    for (const auto& s : m_schedules) {
      const auto it =
        by_key.find(std::make_pair(s.user->controller, config::fold_user_id(s.user->user)));
      out.push_back(
        service::SlotDue{ s.slot, s.user->controller, s.user->user,
                          next_due(s, it == by_key.end() ? nullptr : it->second, now) });
    }
    return out;
  }

  std::vector<service::SlotPlan> plan(int count, Time now) override
  {
    auto rows = m_store.slots();
    std::vector<service::SlotPlan> out;
    for (const auto& s : m_schedules) {
      service::SlotPlan p{ s.slot, s.user->policy.schedule, s.user->policy.timezone, {} };
      std::optional<Time> last;
      if (rows) {
        for (const auto& r : *rows) {
          if (r.controller == s.user->controller &&
              r.user_key == config::fold_user_id(s.user->user)) {
            last = r.last_rotation;
          }
        }
      }
      for (int i = 0; i < count; ++i) {
        auto next = schedule::next_run(s.schedule, s.zone, s.jitter, last, now);
        if (!next) {
          break;
        }
        if (last && *next <= *last) {
          break;
        }
        p.runs.push_back(*next);
        last = std::max(*next, now);
        now = *next;
      }
      out.push_back(std::move(p));
    }
    return out;
  }

private:
  struct Lane
  {
    std::shared_ptr<const config::Config> config;
    std::unique_ptr<Engine> engine;
  };

  // The one rule, as app::Engine's is_due: backoff pushes out, no current token is due
  // now, state's next_due pulls in, else the schedule with the slot's jitter.
  static Time next_due(const SlotSchedule& s, const state::Slot* row, Time now)
  {
    if (row == nullptr || !row->current_uuid) {
      return row && row->backoff_until ? std::max(now, *row->backoff_until) : now;
    }
    auto at = schedule::next_run(s.schedule, s.zone, s.jitter, row->last_rotation, now)
                .value_or(Time::max());
    if (row->next_due && *row->next_due < at) {
      at = *row->next_due;
    }
    if (row->backoff_until && *row->backoff_until > at) {
      at = *row->backoff_until;
    }
    return at;
  }

  asio::awaitable<void> run_lane(const std::string& name, Lane& lane, const PassRequest& request,
                                 rotation::PassObserver* observer, rotation::PassResult& out)
  {
    PassOptions options;
    switch (request.kind) {
      case PassKind::full:
        break;
      case PassKind::rotate:
        options.force = request.force;
        options.only_named = !request.force;
        for (const auto& slot : request.slots) {
          for (const auto& u : lane.config->users) {
            if (u.slot() == slot) {
              options.named.push_back(&u);
            }
          }
        }
        break;
      case PassKind::prune:
        options.only_named = true; // resume, reconcile, prune; rotates nothing
        break;
      case PassKind::preview: {
        auto r = co_await lane.engine->preview();
        out.preview.insert(out.preview.end(), r.preview.begin(), r.preview.end());
        out.errors.insert(out.errors.end(), r.errors.begin(), r.errors.end());
        co_return;
      }
    }
    // What prune may revoke, to tell the observer what went.
    std::vector<state::PruneCandidate> candidates;
    if (auto c = m_store.tokens_to_prune(
          std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()))) {
      for (auto& p : *c) {
        if (p.token.controller == name) {
          candidates.push_back(std::move(p));
        }
      }
    }
    auto r = co_await lane.engine->run_pass(std::move(options));
    for (const auto& p : candidates) {
      auto t = m_store.token(p.token.uuid);
      if (t && *t && (*t)->role == state::TokenRole::revoked && observer != nullptr) {
        observer->on_revoke(name, p.token.user_display, revoke_reason(p.reason), true);
      }
    }
    for (const auto& s : r.slots) {
      rotation::SlotReport report;
      const auto slash = s.slot.find('/');
      report.controller = s.slot.substr(0, slash);
      report.user = slash == std::string::npos ? s.slot : s.slot.substr(slash + 1);
      report.result = parse_result(s.result);
      if (report.result != rotation::SlotResult::committed &&
          report.result != rotation::SlotResult::not_due) {
        report.failure = rotation::FailureKind::other;
      }
      report.old_age = s.old_age;
      report.new_token = s.new_token;
      report.sinks_ok = s.sinks_ok;
      report.sinks_total = s.sinks_total;
      report.previous_retires = s.previous_retires;
      report.message = s.message;
      if (observer != nullptr) {
        observer->on_slot(report);
      }
      out.slots.push_back(std::move(report));
    }
    if (observer != nullptr) {
      observer->on_controller(name, r.errors.empty(), false);
    }
    out.errors.insert(out.errors.end(), r.errors.begin(), r.errors.end());
  }

  asio::any_io_executor m_executor;
  std::shared_ptr<const config::Config> m_config;
  state::Store& m_store;
  std::map<std::string, std::unique_ptr<Lane>> m_lanes;
  std::vector<SlotSchedule> m_schedules;
  bool m_stop = false;
};

} // namespace

util::Result<std::unique_ptr<service::Rotator>>
make_engine_rotator(asio::any_io_executor executor, std::shared_ptr<const config::Config> config,
                    state::Store& store)
{
  auto r = std::make_unique<EngineRotator>(std::move(executor), std::move(config), store);
  if (auto ok = r->init(); !ok) {
    return ok.error();
  }
  return std::unique_ptr<service::Rotator>(std::move(r));
}

} // namespace app
