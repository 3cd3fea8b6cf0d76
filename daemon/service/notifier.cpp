#include "service/notifier.hpp"

#include "sinks/sink.hpp"
#include "state/store.hpp"
#include "util/backoff.hpp"
#include "util/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/chrono.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <deque>
#include <exception>
#include <random>
#include <set>
#include <unordered_map>
#include <utility>

namespace service {

namespace asio = boost::asio;

namespace {

constexpr std::string_view k_format = "jenkins-token-rotator/event/v1";

std::string
utc(Time t)
{
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", t);
}

using config::slot_key;

bool
is_failure(const rotation::SlotReport& r)
{
  // A stop request is no failure of the slot; `delivering` rolls forward (degraded, in
  // the metrics and status); `abandoned` is a lost mint cleaned up and minted again.
  return (r.result == rotation::SlotResult::failed || r.result == rotation::SlotResult::error) &&
         r.failure != rotation::FailureKind::stopped;
}

} // namespace

std::string_view
to_string(EventType type)
{
  switch (type) {
    case EventType::slot_failed:
      return "slot_failed";
    case EventType::slot_recovered:
      return "slot_recovered";
    case EventType::token_expiring:
      return "token_expiring";
    case EventType::reload_failed:
      return "reload_failed";
    case EventType::database_stale:
      return "database_stale";
  }
  return "slot_failed";
}

struct Notifier::State : std::enable_shared_from_this<Notifier::State>
{
  struct Target
  {
    std::unique_ptr<sinks::Sink> sink;
  };
  struct Event
  {
    std::string id;
    std::string controller;
    std::string user;
    std::string type;
    std::string json;
  };
  struct Streak
  {
    Time since;
    int passes = 0;
    std::string user; // as configured
  };

  asio::any_io_executor executor;
  Options options;
  std::vector<std::shared_ptr<sinks::Sink>> targets;
  std::shared_ptr<const config::Config> config;
  std::unordered_map<std::string, Streak> failing;
  std::set<std::string> stale_controllers;
  std::set<std::string> expiring_notified; // token uuids
  std::deque<Event> queue;
  bool sending = false;
  bool stopped = false;
  asio::steady_timer* sleeping = nullptr;
  std::mt19937_64 rng{ std::random_device{}() };

  Time now() const { return options.clock->now(); }

  std::string new_id() { return fmt::format("{:016x}", rng()); }

  void emit(EventType type, const std::string& controller, const std::string& user,
            nlohmann::json fields)
  {
    if (stopped || targets.empty()) {
      return;
    }
    if (queue.size() >= options.queue_limit) {
      util::log::warning("notify: {} events wait for their targets; dropping the oldest ({})",
                         queue.size(), queue.front().type);
      queue.pop_front();
    }
    Event e;
    e.id = new_id();
    e.controller = controller;
    e.user = user;
    e.type = std::string(to_string(type));
    nlohmann::json doc = {
      { "format", k_format }, { "id", e.id }, { "event", e.type }, { "time", utc(now()) }
    };
    if (!controller.empty()) {
      doc["controller"] = controller;
    }
    if (!user.empty()) {
      doc["user"] = user;
      doc["slot"] = controller + "/" + user;
    }
    for (auto& [k, v] : fields.items()) {
      doc[k] = std::move(v);
    }
    e.json = doc.dump();
    queue.push_back(std::move(e));
    if (!sending) {
      sending = true;
      asio::co_spawn(executor, send_all(shared_from_this()), [](std::exception_ptr ex) {
        if (ex) {
          try {
            std::rethrow_exception(ex);
          } catch (const std::exception& what) {
            util::log::error("notify: the sender failed: {}", what.what());
          }
        }
      });
    }
  }

  static asio::awaitable<void> send_all(std::shared_ptr<State> self)
  {
    while (!self->stopped && !self->queue.empty()) {
      auto event = std::move(self->queue.front());
      self->queue.pop_front();
      auto targets = self->targets; // a reload may replace them meanwhile
      for (const auto& target : targets) {
        co_await self->deliver(*target, event);
        if (self->stopped) {
          break;
        }
      }
    }
    self->sending = false;
  }

  asio::awaitable<void> deliver(sinks::Sink& sink, const Event& event)
  {
    sinks::Delivery d;
    d.envelope_json = event.json;
    d.controller = event.controller;
    d.user = event.user;
    // Exec hooks read these as JTR_TOKEN_UUID / JTR_TOKEN_NAME, http targets get the id
    // as Idempotency-Key (docs/notifications.md).
    d.token_uuid = event.id;
    d.token_name = event.type;
    const int attempts = std::max(1, options.retry.attempts);
    for (int n = 1;; ++n) {
      auto outcome = co_await sink.deliver(d);
      if (outcome.ok()) {
        util::log::debug("notify: {} {} sent to {}", event.type, event.id, sink.describe());
        co_return;
      }
      if (outcome.status != sinks::Status::retryable || n >= attempts || stopped) {
        util::log::warning("notify: {} {} not sent: {}", event.type, event.id, outcome.message);
        co_return;
      }
      auto wait = util::full_jitter_delay(options.retry.initial, options.retry.max, n, rng);
      asio::steady_timer timer(executor, wait);
      sleeping = &timer;
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      sleeping = nullptr;
    }
  }
};

util::Result<std::shared_ptr<Notifier>>
Notifier::create(asio::any_io_executor executor, Options options)
{
  if (options.clock == nullptr) {
    options.clock = &util::system_clock();
  }
  auto state = std::make_shared<State>();
  state->executor = std::move(executor);
  auto targets = std::move(options.targets);
  state->options = std::move(options);
  auto n = std::shared_ptr<Notifier>(new Notifier(state));
  if (auto r = n->set_targets(targets); !r) {
    return r.error();
  }
  return n;
}

Notifier::Notifier(std::shared_ptr<State> state)
  : m_state(std::move(state))
{
}

Notifier::~Notifier()
{
  stop();
}

util::Result<void>
Notifier::set_targets(const std::vector<config::Sink>& targets)
{
  std::vector<std::shared_ptr<sinks::Sink>> made;
  for (const auto& t : targets) {
    if (t.type == config::SinkType::file) {
      return util::make_error(
        "config", fmt::format("{}: notify: expected an exec or http target", t.mark.to_string()));
    }
    auto sink = sinks::make_sink(t, m_state->executor);
    if (!sink) {
      return sink.error();
    }
    made.push_back(std::move(*sink));
  }
  m_state->targets = std::move(made);
  return {};
}

void
Notifier::configure(std::shared_ptr<const config::Config> config)
{
  std::set<std::string> slots;
  for (const auto& u : config->users) {
    slots.insert(slot_key(u.controller, u.user));
  }
  std::erase_if(m_state->failing, [&](const auto& kv) { return !slots.contains(kv.first); });
  m_state->config = std::move(config);
}

void
Notifier::reload_failed(const std::string& config_path, const std::vector<std::string>& errors)
{
  m_state->emit(EventType::reload_failed, {}, {},
                { { "config", config_path }, { "errors", errors } });
}

void
Notifier::on_slot(const rotation::SlotReport& report)
{
  auto key = slot_key(report.controller, report.user);
  auto streak = m_state->failing.find(key);
  if (is_failure(report)) {
    if (streak != m_state->failing.end()) {
      streak->second.passes += 1;
      return;
    }
    m_state->failing.emplace(key, State::Streak{ m_state->now(), 1, report.user });
    m_state->emit(EventType::slot_failed, report.controller, report.user,
                  { { "result", rotation::to_string(report.result) },
                    { "failure", rotation::to_string(report.failure) },
                    { "message", report.message } });
    return;
  }
  if (report.result == rotation::SlotResult::committed && streak != m_state->failing.end()) {
    auto since = streak->second.since;
    auto passes = streak->second.passes;
    m_state->failing.erase(streak);
    m_state->emit(EventType::slot_recovered, report.controller, report.user,
                  { { "failing_since", utc(since) },
                    { "failed_passes", passes },
                    { "new_token", report.new_token } });
  }
}

void
Notifier::on_controller(const std::string& controller, bool /*reachable*/, bool stale_database)
{
  if (!stale_database) {
    m_state->stale_controllers.erase(controller);
    return;
  }
  if (m_state->stale_controllers.insert(controller).second) {
    m_state->emit(EventType::database_stale, controller, {},
                  { { "message", "Jenkins holds a token of ours newer than the state database: "
                                 "pruning and rotation stop on this controller until an "
                                 "operator acts" } });
  }
}

void
Notifier::on_pass(const rotation::PassRequest& request, const rotation::PassResult& /*result*/)
{
  if (request.kind == rotation::PassKind::preview || m_state->options.store == nullptr ||
      !m_state->config) {
    return;
  }
  auto tokens = m_state->options.store->current_tokens();
  if (!tokens) {
    util::log::warning("notify: cannot read the current tokens: {}", tokens.error().message);
    return;
  }
  std::unordered_map<std::string, const config::User*> users;
  for (const auto& u : m_state->config->users) {
    users.emplace(slot_key(u.controller, u.user), &u);
  }
  auto now = m_state->now();
  std::set<std::string> current;
  for (const auto& t : *tokens) {
    current.insert(t.uuid);
    auto u = users.find(slot_key(t.controller, t.user_display));
    if (u == users.end() || t.expires - now >= u->second->policy.failure_budget) {
      continue;
    }
    if (!m_state->expiring_notified.insert(t.uuid).second) {
      continue;
    }
    nlohmann::json fields = { { "token_name", t.name },
                              { "expires", utc(t.expires) },
                              { "expires_in_s", (t.expires - now).count() },
                              { "failure_budget_s", u->second->policy.failure_budget.count() } };
    fields["jenkins_expires"] =
      t.jenkins_expires ? nlohmann::json(utc(*t.jenkins_expires)) : nlohmann::json(nullptr);
    m_state->emit(EventType::token_expiring, t.controller, u->second->user, std::move(fields));
  }
  // Tokens no longer current (rotated, revoked) need no memory.
  std::erase_if(m_state->expiring_notified,
                [&](const std::string& uuid) { return !current.contains(uuid); });
}

void
Notifier::stop()
{
  if (m_state->stopped) {
    return;
  }
  m_state->stopped = true;
  if (!m_state->queue.empty()) {
    util::log::warning("notify: stopping with {} events unsent", m_state->queue.size());
  }
  m_state->queue.clear();
  if (m_state->sleeping != nullptr) {
    m_state->sleeping->cancel();
  }
}

std::size_t
Notifier::pending() const
{
  return m_state->queue.size() + (m_state->sending ? 1 : 0);
}

} // namespace service
