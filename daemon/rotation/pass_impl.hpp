#pragma once

#include "rotation/core.hpp"
#include "rotation/for_each_concurrently.hpp"
#include "rotation/pass.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

// One pass of the engine (internal to rotation/): all the state of one run(), one Lane
// per controller. Its methods live in pass.cpp (the order of a pass), jenkins_calls.cpp,
// resume.cpp, reconcile.cpp, rotate.cpp, delivery.cpp and prune.cpp.
namespace rotation::detail {

// The HTTP status a request ended with, for the request metrics: 200 for a success.
template<typename T>
int
status_of(const net::Result<T>& r)
{
  return r ? 200 : r.error().status;
}

// One sink's outcome in this pass, recorded with the rest of its batch.
struct SinkResult
{
  int sink_index = 0;
  state::SinkOutcome outcome = state::SinkOutcome::retryable;
  std::string message;
  int tries = 1; // within this pass
};

// Work in flight for one slot during a pass.
struct Work
{
  SlotEntry* slot = nullptr;
  state::Seq seq = 0;
  std::string name;
  std::optional<std::string> old_uuid;
  std::optional<jenkins::Minted> minted;
  SlotReport report;
  std::vector<SinkResult> sink_results; // not yet in the state
  // Open before this pass: a sink may hold its token although no result says so
  // (results are recorded per batch), so it is never failed, only retried.
  bool resumed = false;
  // auth: self: minted logging in with bootstrap_token_file although a kept token existed
  // (Jenkins refused that one): the bootstrap token is swept after the commit.
  bool bootstrapped = false;

  void mark(SlotResult result, FailureKind failure, std::string message)
  {
    report.result = result;
    report.failure = failure;
    report.message = std::move(message);
  }
};

// A token to revoke and why (the observer and the audit hear the reason).
struct Revoke
{
  std::string user;
  std::string uuid;
  RevokeReason reason = RevokeReason::orphan;
};

// One controller in one pass: everything learnt from it and done to it.
struct Lane
{
  Controller* controller = nullptr;
  std::optional<jenkins::Variant> variant; // from the probe, once per pass
  std::string probe_error;
  // A genuine name of ours (its MAC holds) that no attempt of this database made: the
  // database is stale (restored from a backup). `stale` is the first such finding and
  // stops every revocation on this controller (reconcile's orphans, prune); `stale_slots`
  // the slots whose tokens gave it away, which alone stop rotating (reconcile.cpp says why).
  std::string stale;
  std::map<const SlotEntry*, std::string> stale_slots;
  // Jenkins' clock minus ours, from the probe (nullopt before it). Expiry is computed on
  // Jenkins' clock (the mint script adds the lifetime to its own now), so a skew costs no
  // token; past k_skew_warning it is logged and named in refusals it may explain.
  std::optional<std::chrono::seconds> skew;
  std::optional<bool> usage_statistics;
  std::int64_t jenkins_now_ms = 0;
  std::map<std::string, jenkins::TokenInfo> live; // uuid -> what Jenkins listed
  std::vector<std::unique_ptr<Work>> works;       // owns every Work of the lane
  std::vector<SlotReport> reports;
  std::vector<std::string> errors; // stale database, failed writes
  std::vector<std::string> preview;

  [[nodiscard]] const std::string& name() const { return controller->config->name; }
  Work& add_work(SlotEntry& slot);
};

class Pass
{
public:
  Pass(Core& core, PassRequest request, PassObserver* observer);
  boost::asio::awaitable<PassResult> run();

private:
  // pass.cpp: the order of a pass, and what every step shares.
  boost::asio::awaitable<void> run_lane(Lane& lane);
  boost::asio::awaitable<bool> ensure_slot_rows(std::vector<std::string>& errors);
  [[nodiscard]] bool in_scope(const SlotEntry& slot) const;
  [[nodiscard]] bool named(const SlotEntry& slot) const;
  [[nodiscard]] bool if_due(const SlotEntry& slot) const;
  [[nodiscard]] state::Time now() const { return m_core.clock.now(); }
  [[nodiscard]] bool stopping() const { return m_core.stop.requested(); }
  [[nodiscard]] const config::Config& config() const { return *m_core.config; }
  state::Store& store() { return m_core.store; }
  void report(Lane& lane, const SlotReport& report);
  void audit(const SlotEntry* slot, std::optional<state::Seq> seq, std::string_view event,
             std::string_view detail);
  // A state write that failed is an error of the pass (never silence); true when it held.
  bool check(Lane& lane, const util::Result<void>& written, std::string_view what);
  std::optional<state::Transaction> begin(Lane& lane, std::string_view what);
  bool commit(Lane& lane, std::optional<state::Transaction>& tx, std::string_view what);
  // Commits the transaction that settled lost mints: `settled` if it lands, else none
  // (every one of `lost` then reports a state error).
  std::vector<Work*> commit_settled(Lane& lane, std::optional<state::Transaction>& tx,
                                    const std::vector<Work*>& lost, std::vector<Work*> settled);
  std::optional<state::Slot> slot_row(const SlotEntry& slot);
  boost::asio::awaitable<void> sleep(std::chrono::milliseconds d);
  // Lets the io loop run (the watchdog, the control socket, other lanes) in a loop over
  // every slot of a lane; never inside a transaction. Every k_yield_every slots.
  static constexpr std::size_t k_yield_every = 256;
  boost::asio::awaitable<void> yield();

  // jenkins_calls.cpp: every request goes through these (timed, observed).
  boost::asio::awaitable<bool> ensure_probed(Lane& lane);
  boost::asio::awaitable<net::Result<jenkins::ListAnswer>> list(Lane& lane,
                                                                std::vector<std::string> users);
  boost::asio::awaitable<net::Result<jenkins::MintAnswer>> mint(
    Lane& lane, std::vector<jenkins::MintItem> items);
  boost::asio::awaitable<net::Result<void>> verify(Lane& lane, const std::string& user,
                                                   const crypto::SecretBytes& token);
  // Revokes by uuid; returns the uuids that are gone.
  boost::asio::awaitable<std::set<std::string>> revoke(Lane& lane, std::vector<Revoke> items);
  // Records tokens revoke() found gone, in one transaction.
  void record_revoked(Lane& lane, const std::set<std::string>& gone);
  // revoke(), then record_revoked().
  boost::asio::awaitable<std::set<std::string>> revoke_and_record(Lane& lane,
                                                                  std::vector<Revoke> items);
  void observe_request(Lane& lane, RequestOp op, int status,
                       std::chrono::steady_clock::time_point start);
  // Calls fn(first, count) for each batch_size slice of n items of the lane, up to
  // max_concurrent slices in flight (times `overlap`); a stop request starts no further
  // slice.
  template<typename F>
  boost::asio::awaitable<void> per_batch(const Lane& lane, std::size_t n, F fn,
                                         std::size_t overlap = 1)
  {
    const auto batch = static_cast<std::size_t>(lane.controller->config->batch_size);
    co_await for_each_concurrently(
      (n + batch - 1) / batch,
      overlap * static_cast<std::size_t>(lane.controller->config->max_concurrent),
      [&](std::size_t j) -> boost::asio::awaitable<void> {
        if (!stopping()) {
          co_await fn(j * batch, std::min(batch, n - j * batch));
        }
      });
  }

  // resume.cpp
  boost::asio::awaitable<void> resume(Lane& lane);
  // Lost mints: looks the names up and revokes what it finds (DESIGN §2.2). Returns the
  // works it settled (abandoned); the others stay `planned` for the next pass.
  boost::asio::awaitable<std::vector<Work*>> settle_lost_mints(Lane& lane, std::vector<Work*> lost);
  boost::asio::awaitable<std::vector<bool>> still_alive(Lane& lane,
                                                        const std::vector<Work*>& works);

  // reconcile.cpp
  boost::asio::awaitable<void> reconcile(Lane& lane);
  void reconcile_slot(Lane& lane, SlotEntry& slot, const jenkins::UserTokens& listed,
                      state::Seq highest, std::vector<Revoke>& to_revoke);
  // A token of another, or one named like ours that our key did not make: only
  // `prune: all` touches it, once older than lifetime by Jenkins' clock.
  void foreign_token(Lane& lane, const SlotEntry& slot, const jenkins::TokenInfo& token,
                     std::vector<Revoke>& to_revoke);
  void note(Lane& lane, const SlotEntry& slot, std::optional<state::Seq> seq,
            std::string_view event, const std::string& text);

  // rotate.cpp
  boost::asio::awaitable<void> rotate(Lane& lane);
  boost::asio::awaitable<void> rotate_batch(Lane& lane, std::vector<Work*> batch,
                                            bool second_try = false);
  void fail(Lane& lane, Work& w, FailureKind kind, const std::string& message);
  util::Result<std::vector<state::Envelope>> seal_all(Lane& lane, Work& w,
                                                      const jenkins::Minted& minted,
                                                      state::Time created);

  // delivery.cpp
  boost::asio::awaitable<int> deliver(Work& w);
  void settle(Lane& lane, Work& w, int ok);
  boost::asio::awaitable<void> deliver_and_commit(Lane& lane, const std::vector<Work*>& works);

  // self_rest.cpp: auth: self, over REST as each user (docs/self-rotation.md).
  [[nodiscard]] static bool is_self(const Lane& lane);
  // The token `slot`'s user authenticates with: the current one (sealed in the state), or
  // the bootstrap_token_file before the first commit (or with `bootstrap`: that file
  // whatever is kept). `kept` (if given) says which it was. Errors name the slot.
  util::Result<crypto::SecretBytes> credential(const SlotEntry& slot, bool bootstrap = false,
                                               bool* kept = nullptr);
  // Jenkins refused `slot`'s kept token (revoked or expired outside the rotator) and no
  // bootstrap_token_file gave one it takes: what the operator must do, naming user,
  // controller and bootstrap_token_file.
  static std::string refused_message(const SlotEntry& slot, const std::string& controller);
  boost::asio::awaitable<bool> probe_self(Lane& lane);
  // Chooses, seals and persists each token value, then addFixedToken per item. An item
  // whose answer was lost has the error kind "lost" (settle_lost_mints then asks /whoAmI).
  boost::asio::awaitable<net::Result<jenkins::MintAnswer>> mint_self(
    Lane& lane, const std::vector<Work*>& batch, state::Time t);
  boost::asio::awaitable<std::vector<Work*>> settle_self_lost(Lane& lane, std::vector<Work*> lost);
  boost::asio::awaitable<std::set<std::string>> revoke_self(Lane& lane, std::vector<Revoke> items);
  // After a commit that logged in with the bootstrap token (`old_current`, the token the
  // commit replaced, has no kept value): that token is swept after grace.
  void self_committed(Lane& lane, Work& w, const std::optional<std::string>& old_current);
  // revokeAllExcept(current) for the slots marked to sweep, once nothing else must live.
  boost::asio::awaitable<void> sweep_self(Lane& lane);

  // admin_token.cpp: admin_token_rotation, first step of each lane's pass.
  boost::asio::awaitable<void> admin_token(Lane& lane);
  bool admin_token_due(const Lane& lane);
  boost::asio::awaitable<void> admin_identify_bootstrap(Lane& lane);
  boost::asio::awaitable<void> admin_rotate(Lane& lane);
  boost::asio::awaitable<void> admin_finish(Lane& lane, const state::AdminToken& row,
                                            const crypto::SecretBytes& token);
  boost::asio::awaitable<void> admin_settle_lost(Lane& lane, const state::AdminToken& row);
  boost::asio::awaitable<bool> admin_revoke_row(Lane& lane, const std::string& user,
                                                const std::string& uuid, RevokeReason reason);
  boost::asio::awaitable<void> admin_retire(Lane& lane);
  boost::asio::awaitable<void> report_admin_age(Lane& lane);
  std::optional<state::AdminToken> admin_row(Lane& lane, state::Seq seq);
  void admin_error(Lane& lane, const std::string& message);
  void admin_result(Lane& lane, AdminTokenResult result);

  // prune.cpp
  boost::asio::awaitable<void> prune(Lane& lane);
  // Whether `slot`'s tokens are this lane's to prune: an admin controller's self part
  // (auth: self users) prunes its own slots' over REST, the admin lane every other.
  [[nodiscard]] static bool owns_slot(const Lane& lane, state::SlotId slot);
  void preview_prune(std::vector<std::string>& out);
  void check_still_used(Lane& lane, const state::Token& token);

  Core& m_core;
  PassRequest m_request;
  PassObserver* m_observer;
  bool m_dry_run; // preview: say what would be done, write nothing
  std::map<std::string, Lane> m_lanes;
};

// A permanent slot error (unknown user, user outside the realm): DESIGN §2.2 "backoff
// up to 6 h, no churn".
bool is_permanent(FailureKind kind);
// A clock skew worth a warning (issue 19 #11: "a few minutes").
constexpr std::chrono::seconds k_skew_warning{ 300 };
// "; Jenkins' clock is 40d ahead of ours (…)" when the lane's skew passes k_skew_warning,
// else empty: appended to a refusal the skew may explain.
std::string skew_note(const Lane& lane);
// Exponential slot backoff after `failures` failed attempts in a row, up to 6 h.
std::chrono::seconds slot_backoff(int failures, FailureKind kind);
FailureKind failure_kind(const net::Failure& failure);
FailureKind failure_kind(const jenkins::ItemError& error);

// A sink or recipient change makes the slot due at once: the daemon cannot re-seal an
// old token for a new sink set (DESIGN §2.2).
bool sinks_changed(state::Store& store, const SlotEntry& slot, const state::Slot& row);

} // namespace rotation::detail
