#include "app/engine_rotator.hpp"

#include "rotation/admin_token.hpp"
#include "rotation/engine.hpp"
#include "schedule/jitter.hpp"
#include "schedule/schedule.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace app {

namespace asio = boost::asio;
using service::Time;

namespace {

// service::Rotator over rotation::Engine. One engine per controller lane: an engine runs
// one pass at a time, and the daemon runs a pass per lane at once, so each lane gets an
// engine of its own over a config holding that controller and its users (the whole
// config, uncopied, when there is one controller).
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
      std::shared_ptr<const config::Config> lane_config = m_config;
      if (m_config->controllers.size() > 1) {
        auto sub = std::make_shared<config::Config>(*m_config);
        sub->controllers = { c };
        std::erase_if(sub->users, [&](const config::User& u) { return u.controller != c.name; });
        lane_config = std::move(sub);
      }
      auto engine = rotation::Engine::create(m_executor, std::move(lane_config), m_store);
      if (!engine) {
        return engine.error();
      }
      m_lanes.emplace(c.name, std::move(*engine));
    }
    return {};
  }

  asio::awaitable<rotation::PassResult> run(rotation::PassRequest request,
                                            rotation::PassObserver* observer) override
  {
    if (request.controller) {
      const auto it = m_lanes.find(*request.controller);
      if (it == m_lanes.end()) {
        rotation::PassResult out;
        out.errors.push_back("unknown controller: " + *request.controller);
        co_return out;
      }
      co_return co_await it->second->run(std::move(request), observer);
    }
    // Every lane, one after the other (the daemon names a lane in each request).
    rotation::PassResult out;
    for (auto& [name, engine] : m_lanes) {
      auto r = co_await engine->run(request, observer);
      out.duration += r.duration;
      out.stopped = out.stopped || r.stopped;
      std::move(r.slots.begin(), r.slots.end(), std::back_inserter(out.slots));
      std::move(r.errors.begin(), r.errors.end(), std::back_inserter(out.errors));
      std::move(r.preview.begin(), r.preview.end(), std::back_inserter(out.preview));
    }
    co_return out;
  }

  void request_stop() override
  {
    for (auto& [name, engine] : m_lanes) {
      engine->request_stop();
    }
  }

  util::Result<std::vector<service::SlotDue>> due(Time now) override
  {
    auto rows = slot_rows();
    if (!rows) {
      return rows.error();
    }
    std::vector<service::SlotDue> out;
    out.reserve(m_config->users.size());
    for (const auto& u : m_config->users) {
      out.push_back(service::SlotDue{ u.slot(), u.controller, u.user,
                                      rotation::next_due(u, row_of(*rows, u), now) });
    }
    // Each rotated admin token is a due item of its controller's lane: the scheduler queues
    // a pass, whose first step rotates the token when it is still due.
    for (const auto& c : m_config->controllers) {
      if (!c.admin_token_rotation || c.auth != config::Auth::admin) {
        continue;
      }
      auto current = m_store.admin_current(c.name);
      if (!current) {
        return current.error();
      }
      out.push_back(service::SlotDue{ rotation::admin_token_slot(c.name), c.name,
                                      std::string(rotation::k_admin_token_user),
                                      rotation::admin_next_due(c, *current, now) });
    }
    return out;
  }

  std::vector<service::SlotPlan> plan(int count, Time now) override
  {
    const auto rows = slot_rows();
    std::vector<service::SlotPlan> out;
    out.reserve(m_config->users.size());
    for (const auto& u : m_config->users) {
      service::SlotPlan p{ u.slot(), u.policy.schedule, u.policy.timezone, {} };
      std::optional<Time> last;
      if (rows) {
        if (auto row = row_of(*rows, u)) {
          last = row->last_rotation;
        }
      }
      if (u.policy.parsed_schedule && u.policy.zone) {
        const auto jitter = schedule::Jitter::for_slot(u.slot(), u.policy.jitter);
        auto at = now;
        for (int i = 0; i < count; ++i) {
          auto next =
            schedule::next_run(*u.policy.parsed_schedule, *u.policy.zone, jitter, last, at);
          if (!next || (last && *next <= *last)) {
            break;
          }
          p.runs.push_back(*next);
          last = std::max(*next, at);
          at = *next;
        }
      }
      out.push_back(std::move(p));
    }
    return out;
  }

private:
  using Rows = std::map<std::pair<std::string, std::string>, state::Slot>;

  util::Result<Rows> slot_rows()
  {
    auto rows = m_store.slots();
    if (!rows) {
      return rows.error();
    }
    Rows out;
    for (auto& r : *rows) {
      auto key = std::make_pair(r.controller, r.user_key);
      out.emplace(std::move(key), std::move(r));
    }
    return out;
  }

  static std::optional<state::Slot> row_of(const Rows& rows, const config::User& u)
  {
    const auto it = rows.find(std::make_pair(u.controller, config::fold_user_id(u.user)));
    if (it == rows.end()) {
      return std::nullopt;
    }
    return it->second;
  }

  asio::any_io_executor m_executor;
  std::shared_ptr<const config::Config> m_config;
  state::Store& m_store;
  std::map<std::string, std::unique_ptr<rotation::Engine>> m_lanes;
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
