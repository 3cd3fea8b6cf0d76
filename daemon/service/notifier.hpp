#pragma once

#include "config/config.hpp"
#include "rotation/pass.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace state {
class Store;
} // namespace state

// Push notifications (`notify:`, issue 17) for those without Prometheus: small JSON events
// (docs/notifications.md) sent to exec or http targets through the sink machinery, with
// the `retry:` backoff. Never a token, a token's secret or a header value.
namespace service {

using Time = std::chrono::sys_seconds;

enum class EventType
{
  slot_failed,    // a slot's rotation failed (after the pass's own retries); once per streak
  slot_recovered, // the first commit after a failure streak
  token_expiring, // a current token has less than its failure_budget left; once per token
  reload_failed,  // a reload was rejected; the old config runs on
  database_stale  // Jenkins holds a token of ours newer than the database; once per streak
};

// "slot_failed", "slot_recovered", "token_expiring", "reload_failed", "database_stale".
std::string_view to_string(EventType type);

class Notifier final : public rotation::PassObserver
{
public:
  struct Options
  {
    // Each an exec or http config::Sink (recipients unused): the envelope is the event.
    std::vector<config::Sink> targets;
    config::Retry retry;
    state::Store* store = nullptr;      // read after each pass for tokens near expiry
    const util::Clock* clock = nullptr; // null: util::system_clock()
    std::size_t queue_limit = 1000;     // events waiting beyond this are dropped, logged
  };

  // Makes one sink per target on `executor`. Errors name the target's config mark.
  static util::Result<std::shared_ptr<Notifier>> create(boost::asio::any_io_executor executor,
                                                        Options options);
  ~Notifier() override;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // The slots and failure budgets of the running config (at start and after each
  // accepted reload); streaks of slots that left it are forgotten.
  void configure(std::shared_ptr<const config::Config> config);
  // Replaces the targets (after an accepted reload). Errors name the target's mark; the
  // old targets stay then.
  util::Result<void> set_targets(const std::vector<config::Sink>& targets);

  // A rejected reload: `errors` are the loader's messages (never a secret, DESIGN §5).
  void reload_failed(const std::string& config_path, const std::vector<std::string>& errors);

  void on_slot(const rotation::SlotReport& report) override;
  void on_controller(const std::string& controller, bool reachable, bool stale_database) override;
  void on_pass(const rotation::PassRequest& request, const rotation::PassResult& result) override;

  // Drops what is still queued and ends the sender (daemon stop).
  void stop();

  // Events queued or being sent (tests).
  [[nodiscard]] std::size_t pending() const;

  struct State;

private:
  explicit Notifier(std::shared_ptr<State> state);

  std::shared_ptr<State> m_state;
};

} // namespace service
