#pragma once

#include "config/config.hpp"
#include "control/server.hpp"
#include "rotation/pass.hpp"
#include "service/pass_queue.hpp"
#include "service/rotator.hpp"
#include "service/scheduler.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// The daemon (DESIGN §7a): one io thread; a scheduler on one timer, the pass queue,
// signals, reload, systemd notify and watchdog, and the control socket's backend.
namespace service {

// What a reload ended in: the `reload` answer.
struct ReloadVerdict
{
  bool ok = false;
  std::vector<std::string> errors; // file:line:col: … per line
  std::vector<std::string> added, removed;
  std::size_t slots = 0;
};

struct DaemonOptions
{
  std::shared_ptr<const config::Config> config;
  state::Store* store = nullptr;
  RotatorFactory make_rotator;
  const util::Clock* clock = nullptr; // default: util::system_clock()
  std::chrono::seconds max_sleep = k_max_sleep;
  // Loads the config on reload (off the io thread); default config::load.
  std::function<util::Result<config::Config>(const std::string&)> load;
  bool handle_signals = true;
};

class Daemon
  : public control::Backend
  , public rotation::PassObserver
{
public:
  Daemon(boost::asio::io_context& io, DaemonOptions options);
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Makes the first engine (no network call), then READY=1, the first pass (resume), the
  // scheduler, the signals and the watchdog. Errors: the engine could not be made.
  util::Result<void> start();

  // Called before the process exits (stop the control socket and the metrics listener);
  // each hook added runs, in order.
  void on_shutdown(std::function<boost::asio::awaitable<void>()> hook);

  // Also told of every pass, after the daemon itself (metrics, notifications). The
  // observer must outlive the daemon's passes.
  void add_observer(rotation::PassObserver* observer) { m_observers.push_back(observer); }
  // Told each reload's verdict with the config that runs afterwards (the new one when ok).
  using ReloadHook =
    std::function<void(const ReloadVerdict&, const std::shared_ptr<const config::Config>&)>;
  void on_reload(ReloadHook hook) { m_reload_hooks.push_back(std::move(hook)); }
  // Each configured slot with its next due time (the engine's rule), read now.
  // Errors: called before start() made the engine.
  util::Result<std::vector<SlotDue>> due(Time now)
  {
    if (!m_rotator) {
      return util::make_error("internal", "the engine is not made yet");
    }
    return m_rotator->due(now);
  }

  // Operations (signals and the control socket).
  void stop();
  boost::asio::awaitable<ReloadVerdict> reload();
  // Queues rotations; `slots` empty + force: every slot. Returns the reports when `wait`.
  boost::asio::awaitable<rotation::PassResult> rotate(std::vector<std::string> slots, bool force,
                                                      bool wait);
  boost::asio::awaitable<std::pair<int, std::vector<std::string>>> prune(bool wait);

  [[nodiscard]] bool stopping() const { return m_stopping; }
  [[nodiscard]] bool finished() const { return m_finished; }
  [[nodiscard]] const config::Config& config() const { return *m_config; }

  // control::Backend
  boost::asio::awaitable<control::Answer> handle(control::Request request,
                                                 control::Peer peer) override;

  // rotation::PassObserver
  void on_slot(const rotation::SlotReport& report) override;
  void on_revoke(const std::string& controller, const std::string& user,
                 rotation::RevokeReason reason, bool ok) override;
  void on_controller(const std::string& controller, bool reachable, bool stale) override;
  void on_probe(const std::string& controller, const rotation::ControllerFacts& facts) override;

  // The STATUS= line.
  [[nodiscard]] std::string status_line() const;

  struct Waiter;

private:
  boost::asio::awaitable<void> scheduler_loop();
  boost::asio::awaitable<void> watchdog_loop(std::chrono::microseconds every);
  boost::asio::awaitable<void> signal_loop();
  boost::asio::awaitable<void> run_pass(std::string lane, rotation::PassRequest request);
  boost::asio::awaitable<ReloadVerdict> do_reload();
  void pump();
  void wake();
  void refresh_table(Time now);
  void finish_waiter(WaiterId id);
  void maybe_exit();
  std::shared_ptr<Waiter> new_waiter();
  boost::asio::awaitable<void> wait_for(std::shared_ptr<Waiter> w);
  nlohmann::json status_json();
  std::optional<std::string> resolve(const std::string& name, std::string& slot) const;

  boost::asio::io_context& m_io;
  DaemonOptions m_options;
  std::shared_ptr<const config::Config> m_config;
  state::Store& m_store;
  const util::Clock& m_clock;
  std::unique_ptr<Rotator> m_rotator;
  PassQueue m_queue;
  boost::asio::steady_timer m_timer;
  boost::asio::steady_timer m_watchdog;
  std::optional<boost::asio::signal_set> m_signals;
  boost::asio::thread_pool m_pool{ 1 }; // config parses on reload
  std::vector<std::function<boost::asio::awaitable<void>()>> m_shutdown;
  std::vector<rotation::PassObserver*> m_observers;
  std::vector<ReloadHook> m_reload_hooks;

  // Scheduler state.
  std::vector<SlotDue> m_table;
  bool m_table_dirty = true;
  Time m_epoch;
  std::map<std::string, Time> m_holds;
  Time m_next_prune;
  Time m_next_trim;
  std::optional<Time> m_next_run;
  std::string m_next_slot;

  // Reload state.
  bool m_swap_pending = false;
  std::shared_ptr<boost::asio::steady_timer> m_idle_signal; // cancelled when all lanes idle
  std::shared_ptr<struct ReloadState> m_reload;
  Time m_config_loaded;
  std::optional<ReloadVerdict> m_last_reload;
  Time m_last_reload_at;

  // What passes told us.
  std::map<WaiterId, std::shared_ptr<Waiter>> m_waiters;
  WaiterId m_next_waiter = 1;
  std::map<std::string, int> m_revoked; // per lane, in its running pass
  std::map<std::string, rotation::SlotReport> m_last_report;
  struct ControllerSeen
  {
    std::optional<bool> reachable;
    bool stale = false;
    std::optional<std::string> last_error;
    std::optional<rotation::ControllerFacts> probed; // the latest probe's facts
  };
  std::map<std::string, ControllerSeen> m_controllers;
  std::string m_last_pass = "none yet";

  bool m_stopping = false;
  bool m_finished = false;
  std::chrono::steady_clock::time_point m_started;
};

} // namespace service
