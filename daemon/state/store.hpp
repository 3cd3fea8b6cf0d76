#pragma once

#include "state/dir_lock.hpp"
#include "state/records.hpp"
#include "state/transaction.hpp"
#include "util/error.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace state {

class Database;

// Checks that `json` is a sealed DESIGN §6 envelope of the token `token_uuid` named
// `token_name`; errors of kind "envelope" that never show the envelope's content. The one
// validator is crypto::check_envelope: state may use only util (DESIGN §9), so whoever
// opens the store hands it in.
using EnvelopeCheck = std::function<util::Result<void>(
  std::string_view json, std::string_view token_uuid, std::string_view token_name)>;

// The daemon's state: `state_dir/state.db` in SQLite (WAL, synchronous=FULL), used by one
// process at a time (DESIGN §2-§3). Every mutating call is atomic on its own (a savepoint);
// wrap a batch step in begin()/commit() so it costs one fsync. Calls that change an
// attempt enforce DESIGN §2.2's state machine and append an audit entry in the same
// transaction. The store is only ever given sealed envelopes, never a plain token.
class Store
{
public:
  // Opens (or creates, with a new instance id) state_dir/state.db. Refuses, leaving every
  // file as it is: a state_dir the effective user does not own ("permission"), a lock held
  // by another process ("locked"), a file that is not a healthy SQLite database of ours
  // ("corrupt"), a schema newer than this binary ("schema"). An older schema is copied to
  // state.db.bak-v<N> before it is migrated. Without `check_envelope`, mark_minted refuses
  // every envelope (fail closed): pass crypto::check_envelope.
  static util::Result<Store> open(const std::string& state_dir, EnvelopeCheck check_envelope = {});

  ~Store();
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;

  [[nodiscard]] const std::string& instance_id() const { return m_instance_id; }
  // The key of our token names' MAC (DESIGN §2.1), 32 random bytes as 64 lowercase hex,
  // made once with the database (or its migration to schema v3) and kept in it, so a
  // backup carries it. Not a token, but never log, audit or show it: whoever holds it can
  // forge names that make the daemon think its database is stale.
  [[nodiscard]] const std::string& name_key() const { return m_name_key; }
  [[nodiscard]] const std::string& path() const { return m_path; }

  // A write transaction for one batch step; uncommitted work rolls back when it is dropped.
  util::Result<Transaction> begin();

  // --- Sequence ------------------------------------------------------------------------

  // Hands out the next seq; the counter only grows (also across restarts and rollbacks
  // of later work, as long as this call's transaction committed).
  util::Result<Seq> next_seq();

  // The highest seq ever handed out: a token of ours above it means the database is stale.
  util::Result<Seq> highest_seq();

  // --- Slots ---------------------------------------------------------------------------

  // The slot for (controller, user_key), created if new; user_display is refreshed.
  // user_key must be folded as Jenkins compares ids (config::fold_user_id).
  util::Result<SlotId> ensure_slot(std::string_view controller, std::string_view user_key,
                                   std::string_view user_display);
  util::Result<Slot> slot(SlotId id);
  util::Result<std::optional<Slot>> find_slot(std::string_view controller,
                                              std::string_view user_key);
  util::Result<std::vector<Slot>> slots();
  util::Result<std::vector<Slot>> degraded_slots();

  // No attempt on the slot before `until` (nullopt clears the backoff).
  util::Result<void> set_backoff(SlotId id, std::optional<Time> until);
  // Makes the slot due at `when` whatever its schedule says (nullopt: back to the schedule).
  util::Result<void> set_next_due(SlotId id, std::optional<Time> when);
  // Marks the slot degraded (a delivery is stuck on a sink) or healthy again; audited.
  util::Result<void> set_degraded(SlotId id, bool degraded, std::string_view reason, Time now);

  // --- Attempts (DESIGN §2.2) ----------------------------------------------------------

  // Records a `planned` attempt under a seq from next_seq().
  util::Result<void> create_attempt(Seq seq, SlotId slot, std::string_view token_name, Time now);

  // planned -> minted: the token's uuid and expiry and one sealed envelope per sink of the
  // slot. Each envelope must be a DESIGN §6 envelope of this token with sealed entries.
  util::Result<void> mark_minted(Seq seq, const MintedToken& token,
                                 std::span<const Envelope> envelopes, Time now);

  // minted -> verified: /whoAmI as the new token named the user.
  util::Result<void> mark_verified(Seq seq, Time now);

  // Records the outcome of `tries` delivery tries to one sink (added to earlier ones);
  // the first `ok` moves verified -> delivering.
  util::Result<void> record_sink_result(Seq seq, int sink_index, SinkOutcome outcome,
                                        std::string_view message, Time now, int tries = 1);

  // delivering -> committed once every sink is `ok`: the new token becomes current, the
  // old current becomes previous with retire_at = now + grace; the slot's failures,
  // backoff, next_due and degraded flag are cleared.
  util::Result<CommitOutcome> commit_attempt(Seq seq, Time now, std::chrono::seconds grace);

  // planned|minted|verified -> failed. Refused once any sink holds the token (roll forward).
  // Counts a failure on the slot. A minted token stays `pending` until mark_revoked.
  util::Result<void> fail_attempt(Seq seq, std::string_view error, Time now);

  // planned -> abandoned: a lost mint was found by name and revoked, or nothing was found.
  util::Result<void> abandon_attempt(Seq seq, std::string_view outcome, Time now);

  util::Result<std::optional<Attempt>> attempt(Seq seq);
  // The attempt that named its token `token_name` (names are unique), if any.
  util::Result<std::optional<Attempt>> attempt_named(std::string_view token_name);
  util::Result<std::vector<Attempt>> attempts_in_state(AttemptState state);
  // Attempts a restart must resume (planned, minted, verified, delivering), oldest first.
  util::Result<std::vector<Attempt>> open_attempts();
  // A slot's attempts, newest first.
  util::Result<std::vector<Attempt>> attempts_of_slot(SlotId slot, int limit);

  util::Result<std::vector<Envelope>> envelopes(Seq seq);
  util::Result<std::vector<SinkResult>> sink_results(Seq seq);

  // --- Tokens --------------------------------------------------------------------------

  util::Result<std::optional<Token>> token(std::string_view uuid);
  util::Result<std::optional<Token>> token_by_seq(Seq seq);
  // A slot's tokens that are not revoked, newest first.
  util::Result<std::vector<Token>> live_tokens(SlotId slot);
  // Every slot's current token, in slot id order: one query for the metrics of all slots.
  util::Result<std::vector<Token>> current_tokens();

  // Tokens to revoke at `now`: previous past retire_at, previous or pending past the
  // daemon deadline (pending only of closed attempts), and pending of failed attempts.
  // Never a current token, nor one of an attempt still open.
  util::Result<std::vector<PruneCandidate>> tokens_to_prune(Time now);

  // The token is gone from Jenkins (we revoked it). Refused for a current token.
  util::Result<void> mark_revoked(std::string_view uuid, Time when);

  // The slot's current token vanished from Jenkins out of band: revoked, slot due at once.
  util::Result<void> mark_current_gone(std::string_view uuid, Time when);

  // --- auth: self (docs/self-rotation.md) ----------------------------------------------

  // Keeps the token value chosen for attempt `seq`, sealed to the state key (never plain).
  util::Result<void> put_self_secret(Seq seq, std::string_view sealed);
  util::Result<std::optional<std::string>> self_secret(Seq seq);
  // Forgets the sealed values of attempts whose tokens are revoked or never made.
  util::Result<void> drop_self_secret(Seq seq);

  // The slot's user may hold a token of ours of unknown uuid: sweep it (revokeAllExcept the
  // current one) once `not_before` passed. A later not_before wins over an earlier one.
  util::Result<void> add_self_sweep(SlotId slot, Time not_before, std::string_view reason);
  util::Result<std::vector<SelfSweep>> self_sweeps();
  util::Result<void> clear_self_sweep(SlotId slot);

  // --- admin_token_rotation (docs/admin-token-rotation.md) ------------------------------
  // The intent of an admin token mint under `seq` (from next_seq), committed before it.
  util::Result<void> admin_planned(std::string_view controller, Seq seq, std::string_view name,
                                   Time now);
  // planned -> minted: its uuid and its value sealed to the state key.
  util::Result<void> admin_minted(Seq seq, std::string_view uuid, std::string_view sealed);
  // minted -> current, in one step: the controller's current or bootstrap token (if any)
  // becomes previous (retire_at = now + grace, its sealed value dropped); `keep_sealed` false drops
  // the new one's sealed value too (store: file: the file is its one home).
  util::Result<void> admin_switch(Seq seq, Time now, std::chrono::seconds grace, bool keep_sealed);
  // The bootstrap token (admin_token_file), proven by its hash to be `uuid`: kept as
  // `bootstrap` until the first switch makes it previous. Nothing when the uuid is known.
  util::Result<void> admin_bootstrap(std::string_view controller, std::string_view uuid,
                                     std::string_view name, Time now);
  // Closes a row: revoked, abandoned or failed (its sealed value dropped).
  util::Result<void> admin_close(std::int64_t id, AdminTokenState state, Time now);
  // The controller's rows that are not closed (planned, minted, current, previous,
  // bootstrap), oldest first.
  util::Result<std::vector<AdminToken>> admin_open(std::string_view controller);
  // The controller's current admin token, if any.
  util::Result<std::optional<AdminToken>> admin_current(std::string_view controller);
  // --- Audit ---------------------------------------------------------------------------

  // Appends one entry; detail must never hold a secret.
  util::Result<void> append_audit(Time time, std::optional<SlotId> slot, std::optional<Seq> seq,
                                  std::string_view event, std::string_view detail);
  // Newest first; all slots when `slot` is nullopt.
  util::Result<std::vector<AuditEntry>> audit(std::optional<SlotId> slot, int limit);
  // Deletes entries older than `older_than`; returns how many.
  util::Result<std::int64_t> trim_audit(Time older_than);

private:
  Store(DirLock lock, std::unique_ptr<Database> db, std::string instance_id, std::string name_key,
        EnvelopeCheck check_envelope);

  util::Result<Attempt> expect_state(Seq seq, std::initializer_list<AttemptState> allowed,
                                     std::string_view action);
  util::Result<void> set_attempt_state(const Attempt& attempt, AttemptState state,
                                       std::optional<std::string_view> error, Time now);

  DirLock m_lock; // first member: released last, after the database is closed
  std::unique_ptr<Database> m_db;
  std::string m_path;
  std::string m_instance_id;
  std::string m_name_key; // wiped by the destructor
  EnvelopeCheck m_check_envelope;
};

} // namespace state
