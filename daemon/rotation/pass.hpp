#pragma once

#include "config/config.hpp"
#include "state/records.hpp"
#include "util/clock.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The vocabulary of one rotation pass (DESIGN §2.2): what the daemon, `once`, the control
// socket and the metrics ask of the engine and hear back. Outcomes are enums; the strings
// are only for people.
namespace rotation {

using Time = util::Time;

// What one pass did to one slot.
enum class SlotResult
{
  committed,  // every sink holds the new token; the old one retires after grace
  delivering, // some sink holds it, another failed: rolls forward next pass (degraded)
  failed,     // gave up before any sink was written; the new token is revoked
  abandoned,  // a lost mint was found by name and revoked, or nothing was found
  not_due,    // named, but nothing to do (for instance backing off)
  error       // the slot could not be attempted (controller down, stale database, state)
};

// Why a slot did not commit; `none` when it did.
enum class FailureKind
{
  none,
  unknown_user,    // Jenkins has no such user (permanent: backs off up to 6 h)
  not_in_realm,    // the user cannot log in (Jenkins answers 500; permanent)
  auth,            // Jenkins refused the admin or the new token
  network,         // connection refused, reset, TLS
  timeout,         // a deadline passed
  outcome_unknown, // a mint answer was lost after the request left
  script_error,    // a script threw
  bad_output,      // an answer we cannot read
  sink_rejected,   // a sink refused the envelope for good
  sink_retryable,  // a sink failed, will be retried
  state,           // the state database refused a write
  stale_database,  // a genuine name of ours that no attempt in the database made
  stopped,         // a stop request came first
  other
};

std::string_view to_string(SlotResult result);
std::string_view to_string(FailureKind kind);

struct SlotReport
{
  std::string controller;
  std::string user; // as written in the config
  SlotResult result = SlotResult::error;
  FailureKind failure = FailureKind::none;
  std::optional<std::chrono::seconds> old_age; // age of the token it replaced
  std::string new_token;                       // the new token's name
  int sinks_ok = 0;
  int sinks_total = 0;
  std::optional<Time> previous_retires;
  std::string message; // the error, when there is one; never a secret

  // "controller/user", as config::User::slot().
  [[nodiscard]] std::string slot() const { return controller + "/" + user; }
};

// What one pass did: a report per slot it touched, and errors that are not one slot's
// (a controller that cannot be reached, a stale database, a failed commit).
struct PassResult
{
  std::vector<SlotReport> slots;
  std::vector<std::string> errors;
  std::vector<std::string> preview; // PassKind::preview: one line per action it would take
  bool stopped = false;             // a stop request cut the pass short
  std::chrono::milliseconds duration{ 0 };

  // No error, and every slot it reports committed or had nothing to do.
  [[nodiscard]] bool ok() const;
};

enum class PassKind
{
  full,   // resume open attempts, reconcile, rotate the due slots, prune
  rotate, // resume, then rotate `slots` (or every slot in scope with `force`), due or not,
          // and those of `if_due` still due when the pass reaches them
  prune,  // revoke what is past its deadline or retire_at
  preview // what reconcile and prune would do now; writes nothing (plan --connect)
};

struct PassRequest
{
  PassKind kind = PassKind::full;
  bool force = false;
  std::vector<std::string> slots; // "controller/user", as config::User::slot()
  // rotate: slots rotated only if still due (next_due against the state as the pass reads
  // it, or changed sinks) when the pass reaches them: the scheduler's asks, which another
  // pass may have served since they were queued. A name the config lacks is skipped.
  std::vector<std::string> if_due;
  std::optional<std::string> controller; // only this controller's lane; nullopt: all
};

// Why we revoked a token (metrics, audit).
enum class RevokeReason
{
  superseded,     // a `previous` token past its retire_at
  expired,        // past its daemon deadline, or Jenkins says it expired
  orphan,         // ours, but no attempt of ours accounts for it
  lost_mint,      // the answer of its mint was lost; found by name
  foreign_pruned, // another's token, under `prune: all`
  failed_attempt  // minted by an attempt that failed before any sink held it
};

enum class RequestOp
{
  probe,
  list,
  mint,
  revoke,
  verify
};

// What one pass did to a controller's own admin token (admin_token_rotation).
enum class AdminTokenResult
{
  rotated, // the new token is current; the old one retires after grace
  failed,  // minted but not usable as admin (revoked), or the mint or switch failed
  lost     // the mint answer was lost: looked up by name and revoked
};

std::string_view to_string(RevokeReason reason);
std::string_view to_string(AdminTokenResult result);
std::string_view to_string(RequestOp op);

// What a controller's probe told a pass.
struct ControllerFacts
{
  std::string version;                  // Jenkins.VERSION
  std::string variant;                  // the token API used: expiring, helpers, store
  std::chrono::seconds clock_skew{ 0 }; // Jenkins' clock minus ours
};

// Receives everything a pass does, on the io thread, as it happens: the metrics and the
// daemon's status plug in here, not into the engine. Every method defaults to nothing.
class PassObserver
{
public:
  virtual ~PassObserver() = default;
  virtual void on_slot(const SlotReport& /*report*/) {}
  virtual void on_sink(const std::string& /*controller*/, const std::string& /*user*/,
                       config::SinkType /*type*/, state::SinkOutcome /*outcome*/)
  {
  }
  virtual void on_revoke(const std::string& /*controller*/, const std::string& /*user*/,
                         RevokeReason /*reason*/, bool /*ok*/)
  {
  }
  // http_status 0: no answer (connect failure, timeout, dropped).
  virtual void on_request(const std::string& /*controller*/, RequestOp /*op*/, int /*http_status*/,
                          std::chrono::milliseconds /*took*/)
  {
  }
  virtual void on_controller(const std::string& /*controller*/, bool /*reachable*/,
                             bool /*stale_database*/)
  {
  }
  // Once per controller and pass, after its probe.
  virtual void on_probe(const std::string& /*controller*/, const ControllerFacts& /*facts*/) {}
  virtual void on_pass(const PassRequest& /*request*/, const PassResult& /*result*/) {}
  // admin_token_rotation: an attempt's outcome, and (each pass of the lane) when the current
  // admin token became current.
  virtual void on_admin_token(const std::string& /*controller*/, AdminTokenResult /*result*/) {}
  virtual void on_admin_token_age(const std::string& /*controller*/, Time /*since*/) {}
};

} // namespace rotation
