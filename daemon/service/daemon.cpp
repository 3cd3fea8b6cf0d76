#include "service/daemon.hpp"

#include "config/loader.hpp"
#include "rotation/admin_token.hpp"
#include "service/observer_tee.hpp"
#include "service/systemd.hpp"
#include "util/duration.hpp"
#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <exception>
#include <malloc.h>
#include <set>
#include <unistd.h>

namespace service {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using rotation::PassKind;
using rotation::PassRequest;
using rotation::PassResult;

struct Daemon::Waiter
{
  explicit Waiter(asio::io_context& io)
    : timer(io, asio::steady_timer::time_point::max())
  {
  }
  asio::steady_timer timer;
  WaiterId id = 0;
  int outstanding = 0;
  bool prune = false;
  bool all = false;
  bool stopped = false;
  std::set<std::string> slots;
  PassResult result;
  int revoked = 0;
};

struct ReloadState
{
  explicit ReloadState(asio::io_context& io)
    : timer(io, asio::steady_timer::time_point::max())
  {
  }
  asio::steady_timer timer;
  std::optional<ReloadVerdict> verdict;
};

namespace {

std::string
rfc3339(Time t)
{
  const std::time_t tt = t.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json
json_time(std::optional<Time> t)
{
  return t ? nlohmann::json(rfc3339(*t)) : nlohmann::json(nullptr);
}

std::vector<std::string>
split_lines(const std::string& text)
{
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) {
      end = text.size();
    }
    if (end > start) {
      out.push_back(text.substr(start, end - start));
    }
    start = end + 1;
  }
  return out;
}

void
apply_log_settings(const config::Config& c)
{
  if (auto level = util::log::parse_level(c.log_level)) {
    util::log::configure(*level,
                         util::log::parse_format(c.log_format).value_or(util::log::Format::text));
  }
}

// co_spawn completion: a coroutine of ours that throws is logged, never lost.
auto
log_failure(std::string what)
{
  return [what = std::move(what)](std::exception_ptr e) {
    if (!e) {
      return;
    }
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      util::log::error("{}: {}", what, x.what());
    }
  };
}

control::Answer
refuse(std::string message)
{
  control::Answer a;
  a.ok = false;
  a.error = std::move(message);
  return a;
}

} // namespace

Daemon::Daemon(asio::io_context& io, DaemonOptions options)
  : m_io(io)
  , m_options(std::move(options))
  , m_config(m_options.config)
  , m_store(*m_options.store)
  , m_clock(m_options.clock != nullptr ? *m_options.clock : util::system_clock())
  , m_timer(io)
  , m_watchdog(io)
  , m_started(std::chrono::steady_clock::now())
{
  if (!m_options.load) {
    m_options.load = [](const std::string& path) { return config::load(path); };
  }
}

Daemon::~Daemon()
{
  m_pool.join();
}

void
Daemon::on_shutdown(std::function<asio::awaitable<void>()> hook)
{
  m_shutdown.push_back(std::move(hook));
}

util::Result<void>
Daemon::start()
{
  auto rotator = m_options.make_rotator(m_config);
  if (!rotator) {
    return rotator.error();
  }
  m_rotator = std::move(*rotator);
  m_options.config.reset(); // m_config holds it; a reload must be able to free it
  const auto now = m_clock.now();
  m_epoch = now;
  m_config_loaded = now;
  m_next_prune = now + m_config->prune_interval;
  m_next_trim = now + 24h;
  apply_log_settings(*m_config);
  ::malloc_trim(0);

  if (m_options.handle_signals) {
    m_signals.emplace(m_io, SIGHUP, SIGUSR1, SIGUSR2);
    m_signals->add(SIGTERM);
    m_signals->add(SIGINT);
    asio::co_spawn(m_io, signal_loop(), log_failure("signals"));
  }
  // No network call comes before READY=1: a controller down at boot never times out the
  // start. The first pass of each lane resumes what a previous process left open.
  refresh_table(now);
  systemd::ready(status_line());
  util::log::info("started: {} slots on {} controllers ({})", m_config->users.size(),
                  m_config->controllers.size(), m_config->path);
  for (const auto& c : m_config->controllers) {
    m_queue.add(c.name, Ask{ Ask::Kind::resume, false, {}, std::nullopt });
  }
  pump();
  if (auto every = systemd::watchdog_interval()) {
    asio::co_spawn(m_io, watchdog_loop(*every), log_failure("watchdog"));
  }
  asio::co_spawn(m_io, scheduler_loop(), log_failure("scheduler"));
  return {};
}

// ---- scheduler --------------------------------------------------------------------------

void
Daemon::refresh_table(Time now)
{
  auto table = m_rotator->due(now);
  if (!table) {
    util::log::error("state: {}", table.error().message);
    return;
  }
  m_table = std::move(*table);
  m_table_dirty = false;
  std::erase_if(m_holds, [&](const auto& h) { return h.second <= now; });
}

void
Daemon::wake()
{
  m_timer.cancel();
}

asio::awaitable<void>
Daemon::scheduler_loop()
{
  auto last_wall = m_clock.now();
  auto last_steady = std::chrono::steady_clock::now();
  std::string last_status;
  while (!m_stopping) {
    const auto now = m_clock.now();
    const auto steady = std::chrono::steady_clock::now();
    const auto steady_elapsed =
      std::chrono::duration_cast<std::chrono::seconds>(steady - last_steady);
    if (clock_jumped_forward(now - last_wall, steady_elapsed)) {
      util::log::info("the wall clock jumped forward by {} (suspend or clock step): overdue slots "
                      "are spread over {}",
                      util::format_duration(now - last_wall - steady_elapsed),
                      util::format_duration(m_config->catch_up_spread));
      m_epoch = now;
      m_table_dirty = true;
    }
    last_wall = now;
    last_steady = steady;
    if (m_table_dirty && !m_swap_pending) {
      refresh_table(now);
    }
    const auto w = plan_wake(m_table, now, m_epoch, m_config->catch_up_spread, m_holds);
    for (const auto& [lane, slots] : w.due) {
      // Rotated only if still due when the pass reaches them: another pass may rotate
      // them first (a forced rotate, the reload's full pass, a resumed attempt).
      Ask ask{ Ask::Kind::rotate, false, {}, std::nullopt, true };
      for (const auto& s : slots) {
        if (!m_queue.has(lane, s)) {
          ask.slots.insert(s);
        }
      }
      if (!ask.slots.empty()) {
        util::log::debug("lane {}: {} slots due", lane, ask.slots.size());
        m_queue.add(lane, ask);
      }
    }
    if (now >= m_next_prune) {
      for (const auto& c : m_config->controllers) {
        m_queue.add(c.name, Ask{ Ask::Kind::prune, false, {}, std::nullopt });
      }
      m_next_prune = now + m_config->prune_interval;
    }
    if (now >= m_next_trim) {
      if (auto n = m_store.trim_audit(now - m_config->audit_retention); !n) {
        util::log::error("audit trim: {}", n.error().message);
      } else if (*n > 0) {
        util::log::info("audit log: trimmed {} entries older than {}", *n,
                        util::format_duration(m_config->audit_retention));
      }
      m_next_trim = now + 24h;
    }
    pump();
    m_next_run = w.next;
    m_next_slot.clear();
    if (w.next) {
      for (const auto& s : m_table) {
        const auto h = m_holds.find(s.slot);
        if (run_at(s.slot, s.due, m_epoch, m_config->catch_up_spread,
                   h == m_holds.end() ? std::nullopt : std::optional<Time>(h->second)) == *w.next) {
          m_next_slot = s.slot;
          break;
        }
      }
    }
    auto next = w.next;
    for (const auto t : { m_next_prune, m_next_trim }) {
      if (!next || t < *next) {
        next = t;
      }
    }
    if (auto line = status_line(); line != last_status) {
      systemd::status(line);
      last_status = std::move(line);
    }
    m_timer.expires_after(sleep_for(now, next, m_options.max_sleep));
    co_await m_timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

std::string
Daemon::status_line() const
{
  std::string line = fmt::format("{} slots", m_table.size());
  if (m_stopping) {
    return line + ", stopping";
  }
  if (m_next_run) {
    line += fmt::format(", next rotation {} ({})", rfc3339(*m_next_run), m_next_slot);
  }
  const auto running = m_queue.running_lanes();
  if (!running.empty()) {
    line += fmt::format(", {} passes running", running.size());
  }
  return line + ", last pass " + m_last_pass;
}

// ---- passes -----------------------------------------------------------------------------

void
Daemon::pump()
{
  if (m_stopping || m_swap_pending) {
    return;
  }
  for (const auto& lane : m_queue.lanes()) {
    if (auto request = m_queue.start(lane)) {
      asio::co_spawn(m_io, run_pass(lane, std::move(*request)), log_failure("pass " + lane));
    }
  }
}

asio::awaitable<void>
Daemon::run_pass(std::string lane, PassRequest request)
{
  m_revoked[lane] = 0;
  static constexpr const char* kinds[] = { "full", "rotate", "prune", "preview" };
  util::log::debug("lane {}: {} pass starts ({} slots named, {} if still due{})", lane,
                   kinds[static_cast<int>(request.kind)], request.slots.size(),
                   request.if_due.size(), request.force ? ", forced" : "");
  PassResult result;
  try {
    std::vector<rotation::PassObserver*> observers{ this };
    observers.insert(observers.end(), m_observers.begin(), m_observers.end());
    ObserverTee tee(std::move(observers));
    result = co_await m_rotator->run(request, &tee);
  } catch (const std::exception& e) {
    result.errors.push_back(fmt::format("controller {}: pass failed: {}", lane, e.what()));
  }
  const auto now = m_clock.now();
  int committed = 0;
  int other = 0;
  for (const auto& r : result.slots) {
    if (r.result == rotation::SlotResult::committed) {
      ++committed;
      util::log::debug("{}: committed {} ({}/{} sinks)", r.slot(), r.new_token, r.sinks_ok,
                       r.sinks_total);
    } else if (r.result != rotation::SlotResult::not_due) {
      ++other;
      util::log::warning("{}: {}{}{}", r.slot(), rotation::to_string(r.result),
                         r.message.empty() ? "" : ": ", r.message);
    }
  }
  for (const auto& e : result.errors) {
    util::log::error("{}", e);
  }
  m_controllers[lane].last_error =
    result.errors.empty() ? std::nullopt : std::optional<std::string>(result.errors.front());
  m_last_pass =
    result.errors.empty() && other == 0
      ? fmt::format("ok ({} rotated)", committed)
      : fmt::format("{} rotated, {} not, {} errors", committed, other, result.errors.size());
  if (request.kind == PassKind::rotate) {
    for (const auto* named : { &request.slots, &request.if_due }) {
      for (const auto& s : *named) {
        m_holds[s] = now + k_retry_floor;
      }
    }
    if (request.force) {
      for (const auto& s : m_table) {
        if (s.controller == lane) {
          m_holds[s.slot] = now + k_retry_floor;
        }
      }
    }
  }
  m_table_dirty = true;
  for (const auto id : m_queue.finish(lane)) {
    const auto it = m_waiters.find(id);
    if (it == m_waiters.end()) {
      continue;
    }
    auto& w = *it->second;
    if (w.prune) {
      w.revoked += m_revoked[lane];
    }
    for (const auto& r : result.slots) {
      if ((w.all && r.controller == lane) || w.slots.count(r.slot()) > 0) {
        w.result.slots.push_back(r);
      }
    }
    w.result.errors.insert(w.result.errors.end(), result.errors.begin(), result.errors.end());
    w.result.stopped = w.result.stopped || result.stopped;
    finish_waiter(id);
  }
  if (m_queue.all_idle()) {
    // A pass over 10,000 slots peaks at tens of MB (listings, reports): give it back.
    ::malloc_trim(0);
    if (m_idle_signal) {
      m_idle_signal->cancel();
    }
  }
  if (m_stopping) {
    maybe_exit();
  } else {
    pump();
    wake();
  }
}

std::shared_ptr<Daemon::Waiter>
Daemon::new_waiter()
{
  auto w = std::make_shared<Waiter>(m_io);
  w->id = m_next_waiter++;
  m_waiters.emplace(w->id, w);
  return w;
}

void
Daemon::finish_waiter(WaiterId id)
{
  const auto it = m_waiters.find(id);
  if (it == m_waiters.end()) {
    return;
  }
  if (--it->second->outstanding <= 0) {
    it->second->timer.cancel();
  }
}

asio::awaitable<void>
Daemon::wait_for(std::shared_ptr<Waiter> w)
{
  if (w->outstanding > 0) {
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  m_waiters.erase(w->id);
}

asio::awaitable<PassResult>
Daemon::rotate(std::vector<std::string> slots, bool force, bool wait)
{
  auto w = wait ? new_waiter() : nullptr;
  std::map<std::string, Ask> asks;
  if (force) {
    for (const auto& c : m_config->controllers) {
      asks[c.name] = Ask{ Ask::Kind::rotate, true, {}, std::nullopt };
    }
  } else {
    for (const auto& s : slots) {
      for (const auto& u : m_config->users) {
        if (u.slot() == s) {
          auto& a = asks[u.controller];
          a.kind = Ask::Kind::rotate;
          a.slots.insert(s);
        }
      }
    }
  }
  for (auto& [lane, ask] : asks) {
    if (w) {
      ask.waiter = w->id;
    }
    const int n = m_queue.add(lane, ask);
    if (w) {
      w->outstanding += n;
    }
  }
  pump();
  if (!w) {
    co_return PassResult{};
  }
  w->all = force;
  w->slots.insert(slots.begin(), slots.end());
  co_await wait_for(w);
  auto result = std::move(w->result);
  for (const auto& s : slots) {
    const bool seen = std::any_of(result.slots.begin(), result.slots.end(),
                                  [&](const auto& r) { return r.slot() == s; });
    if (!seen) {
      rotation::SlotReport r;
      const auto slash = s.find('/');
      r.controller = s.substr(0, slash);
      r.user = s.substr(slash + 1);
      r.result = rotation::SlotResult::error;
      r.failure = w->stopped ? rotation::FailureKind::stopped : rotation::FailureKind::other;
      r.message = w->stopped ? "not attempted: the daemon is stopping" : "not attempted";
      result.slots.push_back(std::move(r));
    }
  }
  co_return result;
}

asio::awaitable<std::pair<int, std::vector<std::string>>>
Daemon::prune(bool wait)
{
  auto w = wait ? new_waiter() : nullptr;
  for (const auto& c : m_config->controllers) {
    const int n = m_queue.add(
      c.name, Ask{ Ask::Kind::prune, false, {}, w ? std::optional(w->id) : std::nullopt });
    if (w) {
      w->outstanding += n;
      w->prune = true;
    }
  }
  pump();
  if (!w) {
    co_return std::pair<int, std::vector<std::string>>{};
  }
  co_await wait_for(w);
  co_return std::make_pair(w->revoked, std::move(w->result.errors));
}

// ---- observer ---------------------------------------------------------------------------

void
Daemon::on_slot(const rotation::SlotReport& report)
{
  m_last_report[report.slot()] = report;
}

void
Daemon::on_revoke(const std::string& controller, const std::string& /*user*/,
                  rotation::RevokeReason /*reason*/, bool ok)
{
  if (ok) {
    ++m_revoked[controller];
  }
}

void
Daemon::on_controller(const std::string& controller, bool reachable, bool stale)
{
  auto& c = m_controllers[controller];
  c.reachable = reachable;
  c.stale = stale;
}

void
Daemon::on_probe(const std::string& controller, const rotation::ControllerFacts& facts)
{
  m_controllers[controller].probed = facts;
}

// ---- signals, stop, watchdog ------------------------------------------------------------

asio::awaitable<void>
Daemon::signal_loop()
{
  while (!m_finished) {
    auto [ec, sig] = co_await m_signals->async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      co_return;
    }
    if (m_stopping) {
      util::log::info("signal {} while stopping: still waiting for {} running passes", sig,
                      m_queue.running_lanes().size());
      continue;
    }
    switch (sig) {
      case SIGHUP:
        asio::co_spawn(
          m_io, [this]() -> asio::awaitable<void> { co_await reload(); }, log_failure("reload"));
        break;
      case SIGUSR1:
        util::log::info("SIGUSR1: rotating every slot");
        asio::co_spawn(
          m_io,
          [this]() -> asio::awaitable<void> {
            std::vector<std::string> every; // a named local across co_await (see handle)
            co_await rotate(std::move(every), true, false);
          },
          log_failure("rotate"));
        break;
      case SIGUSR2:
        util::log::info("SIGUSR2: pruning");
        asio::co_spawn(
          m_io, [this]() -> asio::awaitable<void> { co_await prune(false); }, log_failure("prune"));
        break;
      default:
        util::log::info("signal {}: stopping", sig);
        stop();
        break;
    }
  }
}

void
Daemon::stop()
{
  if (m_stopping) {
    return;
  }
  m_stopping = true;
  systemd::stopping();
  const auto running = m_queue.running_lanes();
  if (!running.empty()) {
    util::log::info("stopping: asking {} running passes to stop", running.size());
  }
  m_rotator->request_stop();
  for (const auto id : m_queue.drop_pending()) {
    if (const auto it = m_waiters.find(id); it != m_waiters.end()) {
      it->second->stopped = true;
    }
    finish_waiter(id);
  }
  m_timer.cancel();
  if (m_idle_signal) {
    m_idle_signal->cancel();
  }
  maybe_exit();
}

void
Daemon::maybe_exit()
{
  if (!m_stopping || m_finished || !m_queue.all_idle()) {
    return;
  }
  m_finished = true;
  asio::co_spawn(
    m_io,
    [this]() -> asio::awaitable<void> {
      for (const auto& hook : m_shutdown) {
        co_await hook();
      }
      util::log::info("stopped");
      if (m_signals) {
        m_signals->cancel();
      }
      m_watchdog.cancel();
      m_timer.cancel();
      m_io.stop();
    },
    log_failure("shutdown"));
}

asio::awaitable<void>
Daemon::watchdog_loop(std::chrono::microseconds every)
{
  while (!m_finished) {
    systemd::watchdog();
    m_watchdog.expires_after(every);
    co_await m_watchdog.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// ---- reload -----------------------------------------------------------------------------

asio::awaitable<ReloadVerdict>
Daemon::reload()
{
  if (m_reload) {
    // One reload at a time; a second request hears the verdict of the one under way.
    auto r = m_reload;
    co_await r->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return r->verdict.value_or(ReloadVerdict{});
  }
  auto r = std::make_shared<ReloadState>(m_io);
  m_reload = r;
  ReloadVerdict v;
  try {
    v = co_await do_reload();
  } catch (const std::exception& e) {
    v.errors.push_back(fmt::format("reload failed: {}", e.what()));
  }
  r->verdict = v;
  m_reload.reset();
  r->timer.cancel();
  m_last_reload = v;
  m_last_reload_at = m_clock.now();
  const auto hooks = std::chrono::steady_clock::now();
  for (const auto& hook : m_reload_hooks) {
    hook(v, m_config);
  }
  // The old config is freed once the hooks (metrics, notifications) let go of it: give its
  // pages back now, not at the end of the next pass.
  ::malloc_trim(0);
  util::log::debug(
    "reload: metrics and notifications reconfigured in {} ms",
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - hooks)
      .count());
  systemd::ready(status_line());
  co_return v;
}

asio::awaitable<ReloadVerdict>
Daemon::do_reload()
{
  systemd::reloading();
  const auto started = std::chrono::steady_clock::now();
  const auto path = m_config->path;
  util::log::info("reloading {}", path);
  ReloadVerdict v;
  auto reject = [&](std::vector<std::string> errors) {
    v.ok = false;
    v.errors = std::move(errors);
    for (const auto& e : v.errors) {
      util::log::error("reload: {}", e);
    }
    util::log::error("reload: config rejected; still running the one loaded at {}",
                     rfc3339(m_config_loaded));
    return v;
  };
  // Parsing a big config takes a while: off the io thread, so the watchdog keeps ticking.
  struct Parse
  {
    explicit Parse(asio::io_context& io)
      : done(io, asio::steady_timer::time_point::max())
    {
    }
    asio::steady_timer done;
    std::optional<util::Result<config::Config>> result;
  };
  auto parse = std::make_shared<Parse>(m_io);
  asio::post(m_pool, [parse, loader = m_options.load, path, &io = m_io]() {
    auto r = loader(path);
    asio::post(io, [parse, r = std::move(r)]() mutable {
      parse->result.emplace(std::move(r));
      parse->done.cancel();
    });
  });
  co_await parse->done.async_wait(asio::as_tuple(asio::use_awaitable));
  const auto read = std::chrono::steady_clock::now();
  auto& loaded = parse->result;
  if (m_stopping) {
    co_return reject({ "the daemon is stopping" });
  }
  if (!loaded || !*loaded) {
    co_return reject(loaded ? split_lines(loaded->error().message)
                            : std::vector<std::string>{ "the config could not be loaded" });
  }
  config::Config& next = **loaded;
  std::vector<std::string> restart_only;
  auto same = [&](const char* key, const std::string& was, const std::string& now) {
    if (was != now) {
      restart_only.push_back(fmt::format("{}: {}: changed from \"{}\" to \"{}\": restart the "
                                         "daemon to apply it",
                                         path, key, was, now));
    }
  };
  same("state_dir", m_config->state_dir, next.state_dir);
  same("control.socket", m_config->control_socket, next.control_socket);
  same("control.group", m_config->control_group, next.control_group);
  same("metrics.listen", m_config->metrics_listen, next.metrics_listen);
  if (!restart_only.empty()) {
    co_return reject(std::move(restart_only));
  }
  // Swap between passes: hold new passes and wait for the running ones.
  m_swap_pending = true;
  while (!m_queue.all_idle() && !m_stopping) {
    m_idle_signal =
      std::make_shared<asio::steady_timer>(m_io, asio::steady_timer::time_point::max());
    auto idle = m_idle_signal;
    co_await idle->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  m_idle_signal.reset();
  if (m_stopping) {
    m_swap_pending = false;
    co_return reject({ "the daemon is stopping" });
  }
  auto config = std::make_shared<const config::Config>(std::move(next));
  loaded.reset();
  const auto parsed = std::chrono::steady_clock::now();
  auto rotator = m_options.make_rotator(config);
  if (!rotator) {
    m_swap_pending = false;
    pump();
    co_return reject(split_lines(rotator.error().message));
  }
  std::set<std::string> before;
  std::set<std::string> after;
  for (const auto& u : m_config->users) {
    before.insert(u.slot());
  }
  for (const auto& u : config->users) {
    after.insert(u.slot());
  }
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(v.added));
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(),
                      std::back_inserter(v.removed));
  m_rotator = std::move(*rotator);
  m_config = std::move(config);
  apply_log_settings(*m_config);
  std::set<std::string> lanes;
  for (const auto& c : m_config->controllers) {
    lanes.insert(c.name);
  }
  for (const auto& lane : m_queue.lanes()) {
    if (lanes.count(lane) == 0) {
      for (const auto id : m_queue.drop_lane(lane)) {
        finish_waiter(id);
      }
    }
  }
  // A full pass per lane: added slots rotate, changed sinks make a slot due (the engine).
  for (const auto& lane : lanes) {
    m_queue.add(lane, Ask{ Ask::Kind::full, false, {}, std::nullopt });
  }
  m_table_dirty = true;
  m_swap_pending = false;
  m_config_loaded = m_clock.now();
  v.ok = true;
  v.slots = m_config->users.size();
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  util::log::info("reloaded {} in {} ms (parse {} ms, waiting for passes {} ms, engine {} ms): {} "
                  "slots, {} added, {} removed",
                  path, ms(std::chrono::steady_clock::now() - started), ms(read - started),
                  ms(parsed - read), ms(std::chrono::steady_clock::now() - parsed), v.slots,
                  v.added.size(), v.removed.size());
  for (const auto& s : v.removed) {
    util::log::warning("{}: removed from the config: no longer rotated; its state and tokens are "
                       "kept (status lists it as unconfigured)",
                       s);
  }
  pump();
  wake();
  co_return v;
}

// ---- control ----------------------------------------------------------------------------

std::optional<std::string>
Daemon::resolve(const std::string& name, std::string& slot) const
{
  const auto slash = name.find('/');
  const auto user =
    config::fold_user_id(slash == std::string::npos ? name : name.substr(slash + 1));
  std::vector<std::string> matches;
  for (const auto& u : m_config->users) {
    if (config::fold_user_id(u.user) == user &&
        (slash == std::string::npos || u.controller == name.substr(0, slash))) {
      matches.push_back(u.slot());
    }
  }
  if (matches.empty()) {
    return fmt::format("unknown slot: {}", name);
  }
  if (matches.size() > 1) {
    std::string where;
    for (const auto& m : matches) {
      where += (where.empty() ? "" : ", ") + m;
    }
    return fmt::format("ambiguous slot: {} (on {})", name, where);
  }
  slot = matches[0];
  return std::nullopt;
}

nlohmann::json
Daemon::status_json()
{
  using nlohmann::json;
  const auto now = m_clock.now();
  json daemon = {
    { "version", JTR_VERSION },
    { "pid", ::getpid() },
    { "uptime_s",
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - m_started)
        .count() },
    { "config", m_config->path },
    { "config_loaded", rfc3339(m_config_loaded) },
    { "last_reload", nullptr },
    { "passes_running", m_queue.running_lanes() },
  };
  if (m_last_reload) {
    daemon["last_reload"] = { { "ok", m_last_reload->ok },
                              { "at", rfc3339(m_last_reload_at) },
                              { "errors", m_last_reload->errors } };
  }
  json controllers = json::array();
  for (const auto& c : m_config->controllers) {
    const auto& seen = m_controllers[c.name];
    controllers.push_back(
      { { "name", c.name },
        { "url", c.url },
        { "reachable", seen.reachable ? json(*seen.reachable) : json(nullptr) },
        { "version", seen.probed ? json(seen.probed->version) : json(nullptr) },
        { "capabilities", seen.probed ? json::array({ seen.probed->variant }) : json::array() },
        { "last_error", seen.last_error ? json(*seen.last_error) : json(nullptr) },
        { "clock_skew_s", seen.probed ? json(seen.probed->clock_skew.count()) : json(nullptr) },
        { "stale_database", seen.stale } });
  }
  std::map<std::pair<std::string, std::string>, const config::User*> configured;
  for (const auto& u : m_config->users) {
    configured.emplace(std::make_pair(u.controller, config::fold_user_id(u.user)), &u);
  }
  std::map<std::string, Time> next_runs;
  for (const auto& s : m_table) {
    const auto h = m_holds.find(s.slot);
    next_runs[s.slot] = run_at(s.slot, s.due, m_epoch, m_config->catch_up_spread,
                               h == m_holds.end() ? std::nullopt : std::optional<Time>(h->second));
  }
  json slots = json::array();
  auto rows = m_store.slots();
  if (rows) {
    for (const auto& row : *rows) {
      const auto it = configured.find(std::make_pair(row.controller, row.user_key));
      const config::User* u = it == configured.end() ? nullptr : it->second;
      const std::string name = u ? u->slot() : row.controller + "/" + row.user_display;
      std::string st = "ok";
      if (!u) {
        st = "unconfigured";
      } else if (!row.current_uuid) {
        st = "new";
      } else if (row.backoff_until && *row.backoff_until > now) {
        st = "backoff";
      } else if (row.degraded) {
        st = "degraded";
      } else if (row.consecutive_failures > 0) {
        st = "failing";
      }
      json j = { { "slot", name },
                 { "controller", row.controller },
                 { "user", u ? u->user : row.user_display },
                 { "configured", u != nullptr },
                 { "state", st },
                 { "current_token", nullptr },
                 { "token_age_s", nullptr },
                 { "expires", nullptr },
                 { "jenkins_expires", nullptr },
                 { "next_run", nullptr },
                 { "last_rotation", json_time(row.last_rotation) },
                 { "last_result", nullptr },
                 { "last_error", row.last_error ? json(*row.last_error) : json(nullptr) },
                 { "consecutive_failures", row.consecutive_failures },
                 { "backoff_until", json_time(row.backoff_until) },
                 { "previous_retires", nullptr } };
      if (row.current_uuid) {
        if (auto t = m_store.token(*row.current_uuid); t && *t) {
          j["current_token"] = (*t)->name;
          j["token_age_s"] = (now - (*t)->created).count();
          j["expires"] = rfc3339((*t)->expires);
          j["jenkins_expires"] = json_time((*t)->jenkins_expires);
        }
      }
      if (auto live = m_store.live_tokens(row.id)) {
        for (const auto& t : *live) {
          if (t.role == state::TokenRole::previous && t.retire_at) {
            j["previous_retires"] = rfc3339(*t.retire_at);
          }
        }
      }
      if (u) {
        if (const auto n = next_runs.find(name); n != next_runs.end()) {
          j["next_run"] = rfc3339(n->second);
        }
      }
      if (const auto r = m_last_report.find(name); r != m_last_report.end()) {
        j["last_result"] = std::string(rotation::to_string(r->second.result));
        if (!r->second.message.empty() && r->second.result != rotation::SlotResult::committed) {
          j["last_error"] = r->second.message;
        }
      }
      slots.push_back(std::move(j));
    }
  }
  // admin_token_rotation: each controller's own admin token (never its value).
  json admin_tokens = json::array();
  for (const auto& c : m_config->controllers) {
    if (!c.admin_token_rotation) {
      continue;
    }
    json j = { { "controller", c.name },
               { "store", config::to_string(c.admin_token_rotation->store) },
               { "schedule", c.admin_token_rotation->policy.schedule },
               { "token", nullptr },
               { "since", nullptr },
               { "age_s", nullptr },
               { "next_rotation", nullptr },
               { "previous_retires", nullptr } };
    if (auto admin_rows = m_store.admin_open(c.name)) {
      for (const auto& t : *admin_rows) {
        if (t.state == state::AdminTokenState::current) {
          const auto since = t.switched.value_or(t.created);
          j["token"] = t.name;
          j["since"] = rfc3339(since);
          j["age_s"] = (now - since).count();
        } else if (t.state == state::AdminTokenState::previous && t.retire_at) {
          j["previous_retires"] = rfc3339(*t.retire_at);
        }
      }
    }
    if (const auto n = next_runs.find(rotation::admin_token_slot(c.name)); n != next_runs.end()) {
      j["next_rotation"] = rfc3339(n->second);
    }
    admin_tokens.push_back(std::move(j));
  }
  return { { "daemon", std::move(daemon) },
           { "controllers", std::move(controllers) },
           { "slots", std::move(slots) },
           { "admin_tokens", std::move(admin_tokens) } };
}

asio::awaitable<control::Answer>
Daemon::handle(control::Request request, control::Peer /*peer*/)
{
  using nlohmann::json;
  control::Answer a;
  if (m_stopping && request.cmd != control::Command::status &&
      request.cmd != control::Command::history && request.cmd != control::Command::plan) {
    co_return refuse("the daemon is stopping");
  }
  switch (request.cmd) {
    case control::Command::status:
      a.fields = status_json();
      break;
    case control::Command::rotate: {
      std::vector<std::string> slots;
      if (!request.all) {
        for (const auto& name : request.slots) {
          std::string slot;
          if (auto e = resolve(name, slot)) {
            co_return refuse(*e);
          }
          if (std::find(slots.begin(), slots.end(), slot) == slots.end()) {
            slots.push_back(slot);
          }
        }
      } else {
        for (const auto& u : m_config->users) {
          slots.push_back(u.slot());
        }
      }
      // Named locals, not temporaries, across co_await: g++ 12 destroys a conditional
      // expression's temporary twice in a coroutine.
      std::vector<std::string> named;
      if (!request.all) {
        named = slots;
      }
      if (!request.wait) {
        co_await rotate(std::move(named), request.all, false);
        a.fields["queued"] = slots;
        break;
      }
      auto r = co_await rotate(std::move(named), request.all, true);
      json results = json::array();
      int bad = 0;
      for (const auto& s : r.slots) {
        if (s.result != rotation::SlotResult::committed) {
          ++bad;
        }
        results.push_back({ { "slot", s.slot() },
                            { "result", rotation::to_string(s.result) },
                            { "new_token", s.new_token },
                            { "sinks_ok", s.sinks_ok },
                            { "sinks_total", s.sinks_total },
                            { "message", s.message } });
      }
      a.fields["results"] = std::move(results);
      if (bad > 0) {
        a.ok = false;
        a.error = fmt::format("{} of {} slots did not commit", bad, r.slots.size());
      }
      break;
    }
    case control::Command::prune: {
      if (!request.wait) {
        co_await prune(false);
        a.fields["queued"] = true;
        break;
      }
      auto [revoked, errors] = co_await prune(true);
      a.fields["revoked"] = revoked;
      a.fields["errors"] = errors;
      break;
    }
    case control::Command::reload: {
      auto v = co_await reload();
      if (v.ok) {
        a.fields = { { "config", m_config->path },
                     { "slots", v.slots },
                     { "added", v.added },
                     { "removed", v.removed } };
      } else {
        a.ok = false;
        a.error = "config rejected";
        a.fields["errors"] = v.errors;
      }
      break;
    }
    case control::Command::history: {
      std::optional<state::SlotId> id;
      std::map<state::SlotId, std::string> names;
      if (auto rows = m_store.slots()) {
        for (const auto& r : *rows) {
          names[r.id] = r.controller + "/" + r.user_display;
        }
      }
      if (request.slot) {
        std::string slot;
        if (auto e = resolve(*request.slot, slot)) {
          co_return refuse(*e);
        }
        for (const auto& [sid, n] : names) {
          if (n == slot) {
            id = sid;
          }
        }
        if (!id) {
          a.fields["events"] = json::array();
          break;
        }
      }
      auto entries = m_store.audit(id, request.limit);
      if (!entries) {
        co_return refuse(entries.error().message);
      }
      json events = json::array();
      for (const auto& e : *entries) {
        events.push_back({ { "time", rfc3339(e.time) },
                           { "slot", e.slot ? json(names[*e.slot]) : json(nullptr) },
                           { "seq", e.seq ? json(*e.seq) : json(nullptr) },
                           { "event", e.event },
                           { "detail", e.detail } });
      }
      a.fields["events"] = std::move(events);
      break;
    }
    case control::Command::plan: {
      json slots = json::array();
      for (const auto& p : m_rotator->plan(request.count, m_clock.now())) {
        json runs = json::array();
        for (const auto t : p.runs) {
          runs.push_back(rfc3339(t));
        }
        slots.push_back({ { "slot", p.slot },
                          { "schedule", p.schedule },
                          { "timezone", p.timezone },
                          { "runs", std::move(runs) } });
      }
      a.fields["slots"] = std::move(slots);
      break;
    }
  }
  co_return a;
}

} // namespace service
