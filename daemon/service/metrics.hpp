#pragma once

#include "rotation/pass.hpp"
#include "state/records.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace config {
struct Config;
struct User;
} // namespace config
namespace state {
class Store;
} // namespace state

// The daemon's Prometheus metrics (issue 17): a registry that hears a pass as its
// rotation::PassObserver, reads each slot's facts from the state after the pass, and
// renders the text exposition format 0.0.4. Names and meanings: docs/metrics.md.
namespace service {

using Time = std::chrono::sys_seconds;

// What a slot is to an operator (the `status` words of the control contract).
enum class SlotState
{
  ok,       // its current token was delivered by the last attempt
  fresh,    // "new": never rotated yet
  degraded, // a sink holds a new token and another does not yet (rolling forward)
  failing,  // the last attempts failed
  backoff   // failed, and waits before the next attempt
};

// "ok", "new", "degraded", "failing", "backoff".
std::string_view to_string(SlotState state);

// The state of a slot from its row at `now` (nullopt: no row yet, a new slot).
SlotState slot_state(const std::optional<state::Slot>& row, Time now);

// What the metrics show of one configured slot.
struct SlotFacts
{
  std::optional<Time> last_success;    // the last commit
  std::optional<Time> next_rotation;   // when the daemon will next rotate it
  std::optional<Time> expires;         // the current token's daemon deadline
  std::optional<Time> jenkins_expires; // the current token's expiry in Jenkins
  std::chrono::seconds failure_budget{ 0 };
  int consecutive_failures = 0;
  SlotState state = SlotState::fresh;
};

class Metrics final
  : public rotation::PassObserver
  , public std::enable_shared_from_this<Metrics>
{
public:
  // The engine's one "when is this slot due" (rotation::next_due).
  using NextDue =
    std::function<Time(const config::User&, const std::optional<state::Slot>&, Time now)>;
  // The same for every slot at once ("controller/user" → due), as the daemon's Rotator
  // gives it; used when next_due is empty.
  using AllDue = std::function<std::vector<std::pair<std::string, Time>>(Time now)>;

  struct Options
  {
    std::string version = JTR_VERSION;
    // Read after each pass and by configure(); null: slot facts only through set_slot().
    state::Store* store = nullptr;
    NextDue next_due;
    AllDue all_due;
    const util::Clock* clock = nullptr; // null: util::system_clock()
  };

  // Shared: a scrape in progress keeps the registry alive (the HTTP connection may
  // outlive the daemon's reference during shutdown).
  static std::shared_ptr<Metrics> create(Options options);

  // Takes the slot and controller set of `config` (at start and after each accepted
  // reload): series of slots and controllers it no longer names disappear, new slots
  // appear, and with a store every slot's facts are read again. Errors: the store's.
  util::Result<void> configure(std::shared_ptr<const config::Config> config);

  // Reads every configured slot's row and current token from the store (two queries)
  // and sets its facts. Called by on_pass(); a no-op without a store.
  util::Result<void> refresh();

  // Sets one configured slot's facts; false when the config has no such slot.
  bool set_slot(std::string_view controller, std::string_view user, const SlotFacts& facts);

  // The verdict of a reload (the start-up load counts as a successful one).
  void reload_result(bool ok, Time at);

  void on_slot(const rotation::SlotReport& report) override;
  void on_sink(const std::string& controller, const std::string& user, config::SinkType type,
               state::SinkOutcome outcome) override;
  void on_revoke(const std::string& controller, const std::string& user,
                 rotation::RevokeReason reason, bool ok) override;
  void on_request(const std::string& controller, rotation::RequestOp op, int http_status,
                  std::chrono::milliseconds took) override;
  void on_controller(const std::string& controller, bool reachable, bool stale_database) override;
  void on_pass(const rotation::PassRequest& request, const rotation::PassResult& result) override;
  void on_admin_token(const std::string& controller, rotation::AdminTokenResult result) override;
  void on_admin_token_age(const std::string& controller, Time since) override;

  // One scrape in progress, rendered piece by piece so a scrape of 10,000 slots never
  // holds the whole text (about 6 MB) at once. Slots removed by a reload during a scrape
  // are kept until it ends, so no series appears twice or half-way in one answer.
  class Scrape
  {
  public:
    explicit Scrape(std::shared_ptr<Metrics> metrics);
    ~Scrape();
    Scrape(const Scrape&) = delete;
    Scrape& operator=(const Scrape&) = delete;

    // Appends the next piece of the text to `out` (whole lines, until it grew by about
    // `chunk` bytes); false once the text is complete.
    bool next(std::string& out, std::size_t chunk = k_chunk);

    static constexpr std::size_t k_chunk = 64 * 1024;

  private:
    friend class Metrics;
    std::shared_ptr<Metrics> m_metrics;
    std::size_t m_family = 0;
    std::size_t m_item = 0;
    std::size_t m_slot_end;     // slots appended after the scrape began are left out
    std::uint64_t m_generation; // slots removed before the scrape began are left out
  };

  std::unique_ptr<Scrape> scrape();
  // A scrape as net::BodyPieces (what net::MetricsServer asks of each GET /metrics):
  //   net::MetricsServer::start(ex, {.listen = ...}, [m] { return m->pieces(); });
  std::function<bool(std::string& out)> pieces();
  // The whole text at once (tests, small configs).
  std::string render();

  // The number of families rendered (tests).
  static std::size_t family_count();

  explicit Metrics(Options options); // use create()

  struct Histogram
  {
    std::vector<std::uint64_t> buckets; // non-cumulative, one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };

  static constexpr std::size_t k_results = 6;       // rotation::SlotResult
  static constexpr std::size_t k_ops = 5;           // rotation::RequestOp
  static constexpr std::size_t k_classes = 7;       // none, 1xx..5xx, other
  static constexpr std::size_t k_reasons = 6;       // rotation::RevokeReason
  static constexpr std::size_t k_kinds = 4;         // rotation::PassKind
  static constexpr std::size_t k_types = 3;         // config::SinkType
  static constexpr std::size_t k_outcomes = 3;      // state::SinkOutcome
  static constexpr std::size_t k_admin_results = 3; // rotation::AdminTokenResult

private:
  friend class Scrape;
  struct SlotEntry
  {
    std::string controller;
    std::string user; // label values; the escaped labels are built on scrape
    SlotFacts facts;
    // 0: configured. Else the generation of the configure() that removed it while a
    // scrape was running; scrapes begun before that still show it.
    std::uint64_t removed = 0;
  };

  struct ControllerEntry
  {
    std::string name;
    std::string labels; // controller="…"
    std::optional<bool> up;
    std::optional<bool> stale_database;
    std::array<std::uint64_t, k_results> rotations{};
    std::array<std::array<std::uint64_t, k_classes>, k_ops> requests{};
    std::array<std::optional<Histogram>, k_ops> durations;
    std::array<std::array<std::uint64_t, 2>, k_reasons> revoked{}; // [reason][ok]
    std::optional<Time> admin_since; // when its admin token became current (rotated ones)
    std::array<std::uint64_t, k_admin_results> admin_rotations{};
    bool configured = true;
  };

  struct Family;
  void render_family(std::size_t family, std::size_t& item, const Scrape& scrape, std::string& out,
                     std::size_t limit);
  ControllerEntry& controller(std::string_view name);
  void compact();
  void apply_retain(const config::Config& config);

  Options m_options;
  std::shared_ptr<const config::Config> m_config;
  std::vector<SlotEntry> m_slots;
  std::unordered_map<std::string, std::size_t> m_slot_index; // controller '\n' folded user
  std::vector<ControllerEntry> m_controllers;
  std::array<std::array<std::uint64_t, k_outcomes>, k_types> m_sinks{};
  std::array<std::optional<Histogram>, k_kinds> m_passes;
  std::optional<bool> m_reload_ok;
  std::optional<Time> m_reload_at;
  std::string m_build_labels;
  std::uint64_t m_generation = 0;
  int m_active_scrapes = 0;
  bool m_compact_pending = false;
};

// Escapes a label value for the text format: backslash, double quote, line feed.
void append_label_value(std::string& out, std::string_view value);

} // namespace service
