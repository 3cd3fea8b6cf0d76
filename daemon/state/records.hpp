#pragma once

#include "util/clock.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// The rows of the state database as plain values (DESIGN §2). The tables themselves are
// described in state/schema.cpp.
namespace state {

// A wall-clock instant (util::Time, as schedule::Instant), stored as integer unix seconds
// (DESIGN §8).
using Time = util::Time;
using SlotId = std::int64_t;
using Seq = std::int64_t;

// States of one attempt (DESIGN §2.2).
enum class AttemptState
{
  planned,
  minted,
  verified,
  delivering,
  committed,
  failed,
  abandoned
};

// What a token we made is to its slot. `pending`: minted by an attempt that has not
// committed (yet); `current`: the token the sinks hold; `previous`: the one it replaced,
// revoked at `retire_at`; `revoked`: gone from Jenkins.
enum class TokenRole
{
  pending,
  current,
  previous,
  revoked
};

// Result of one delivery to one sink (DESIGN §6).
enum class SinkOutcome
{
  ok,
  retryable,
  rejected
};

// Why a token is due for revocation (tokens_to_prune).
enum class PruneReason
{
  retired,    // a `previous` token past its retire_at
  expired,    // past its daemon deadline (created + lifetime)
  failed_mint // minted by an attempt that failed before any sink held the token
};

std::string_view to_string(AttemptState state);
std::string_view to_string(TokenRole role);
std::string_view to_string(SinkOutcome outcome);
std::string_view to_string(PruneReason reason);
std::optional<AttemptState> parse_attempt_state(std::string_view text);
std::optional<TokenRole> parse_token_role(std::string_view text);
std::optional<SinkOutcome> parse_sink_outcome(std::string_view text);

// True for the states a restart must resume (planned, minted, verified, delivering).
bool is_open(AttemptState state);

// One slot: one controller + one Jenkins user (DESIGN §2.2).
struct Slot
{
  SlotId id = 0;
  std::string controller;
  std::string user_key;                    // folded as Jenkins compares ids (config::fold_user_id)
  std::string user_display;                // as written in the config
  std::optional<std::string> current_uuid; // the token with role `current`, if any
  std::optional<Time> last_rotation;       // when the last attempt committed
  std::optional<Time> next_due;            // overrides the schedule (rotate now, superseding)
  std::optional<Time> backoff_until;       // no attempt before this instant
  int consecutive_failures = 0;            // failed attempts since the last commit
  bool degraded = false;                   // a delivery is stuck on some sink
  std::optional<std::string> last_error;
};

// One token we minted.
struct Token
{
  std::string uuid;
  std::string name; // of its attempt
  Seq seq = 0;
  SlotId slot = 0;
  std::string controller;
  std::string user_display;
  Time created;
  Time expires;                        // the daemon's deadline: created + lifetime
  std::optional<Time> jenkins_expires; // null where Jenkins has no expiry
  TokenRole role = TokenRole::pending;
  std::optional<Time> retire_at;
  std::optional<Time> revoked_at;
};

// One rotation attempt of one slot.
struct Attempt
{
  Seq seq = 0;
  SlotId slot = 0;
  AttemptState state = AttemptState::planned;
  std::string token_name;
  std::optional<std::string> token_uuid; // null until minted
  std::optional<std::string> error;      // failure or abandon outcome
  Time created;
  Time updated;
};

// What Jenkins answered to a mint, minus the secret.
struct MintedToken
{
  std::string uuid;
  Time created;
  Time expires;
  std::optional<Time> jenkins_expires;
};

// The sealed envelope (DESIGN §6) meant for one sink of the slot, with a hash of that
// sink's config so a resumed delivery can tell that the sink changed.
struct Envelope
{
  int sink_index = 0;
  std::string sink_hash;
  std::string json;
};

struct SinkResult
{
  int sink_index = 0;
  SinkOutcome outcome = SinkOutcome::retryable;
  std::string message;
  int tries = 0;
  Time updated;
};

// What commit_attempt did to the slot's tokens.
struct CommitOutcome
{
  std::optional<std::string> previous_uuid; // the old current, now previous
  std::optional<Time> retire_at;
};

struct PruneCandidate
{
  Token token;
  PruneReason reason = PruneReason::expired;
};

struct AuditEntry
{
  std::int64_t id = 0;
  Time time;
  std::optional<SlotId> slot;
  std::optional<Seq> seq;
  std::string event;
  std::string detail;
};

// A slot whose user may hold a token of ours of unknown uuid (auth: self).
struct SelfSweep
{
  SlotId slot = 0;
  Time not_before;
  std::string reason;
};

// An admin token of ours (admin_token_rotation, docs/admin-token-rotation.md).
enum class AdminTokenState
{
  planned,   // intent committed; the mint may or may not have happened
  minted,    // uuid known, value sealed to the state key; not used yet
  current,   // what the daemon authenticates with
  previous,  // replaced; revoked at retire_at
  bootstrap, // the admin_token_file's token, identified by its hash; previous at the first switch
  revoked,   // gone from Jenkins
  abandoned, // a lost mint, found by name and revoked, or never made
  failed     // minted but refused as admin: revoked by uuid
};

std::string_view to_string(AdminTokenState state);

struct AdminToken
{
  std::int64_t id = 0;
  std::string controller;
  std::optional<Seq> seq; // nullopt: the bootstrap token from admin_token_file
  std::string name;
  std::optional<std::string> uuid;
  std::optional<std::string> sealed; // sealed to the state key, never plain
  AdminTokenState state = AdminTokenState::planned;
  Time created;
  std::optional<Time> switched;
  std::optional<Time> retire_at;
};

} // namespace state
