#pragma once

#include "config/config.hpp"
#include "rotation/api_factory.hpp"
#include "rotation/pass.hpp"
#include "state/records.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>

namespace state {
class Store;
}

namespace rotation {

namespace detail {
struct Core;
}

// The one "when is this slot due" (engine, plan, daemon): the schedule (with the slot's
// jitter) from the last rotation, brought forward by the state's next_due (rotate now,
// superseding) or at once without a current token, pushed out by backoff_until. `row`
// nullopt: a slot the state does not know yet, due now. May be ≤ now: due.
Time next_due(const config::User& user, const std::optional<state::Slot>& row, Time now);

// The rotation engine (DESIGN §2): long-lived, built once per config snapshot (the Jenkins
// Api of each controller, the sinks, the slot table); each run() is one pass with its own
// state (rotation::detail::Pass): resume open attempts, reconcile with Jenkins, rotate the
// due slots in batches, prune. One lane per controller: the controllers' work runs
// concurrently, so a slow or down controller holds up only itself. Runs on one
// single-threaded io_context; no transaction is open across a co_await.
class Engine
{
public:
  // Loads the recipients' keys, makes each controller's Api (`api`; default: the real
  // controllers over HTTPS) and each slot's sinks. Writes nothing. Errors ("config"): a key
  // file that does not parse, an admin token file, a sink that cannot be made.
  static util::Result<std::unique_ptr<Engine>> create(boost::asio::any_io_executor executor,
                                                      std::shared_ptr<const config::Config> config,
                                                      state::Store& store,
                                                      std::unique_ptr<ApiFactory> api = {},
                                                      const util::Clock* clock = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One pass. `observer` (may be null) hears every slot result, sink outcome, revoke,
  // request and the pass itself, on the io thread. Slots are "controller/user"; an unknown
  // one is an error of the pass. One pass at a time.
  boost::asio::awaitable<PassResult> run(PassRequest request, PassObserver* observer = nullptr);

  // Cooperative stop, on the io thread: no further batch starts and prune is skipped;
  // attempts in flight reach a persisted state of DESIGN §2.2 (an attempt whose delivery
  // was cut short stays open, to be resumed); retry sleeps and sink deliveries are cut
  // short (an exec hook's process group is killed). Sticky: later passes stop at once.
  void request_stop();
  [[nodiscard]] bool stop_requested() const;

  [[nodiscard]] const config::Config& config() const;
  [[nodiscard]] std::shared_ptr<const config::Config> config_ptr() const;

private:
  explicit Engine(std::unique_ptr<detail::Core> core);
  std::unique_ptr<detail::Core> m_core;
};

} // namespace rotation
