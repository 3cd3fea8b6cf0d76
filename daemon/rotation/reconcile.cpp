// Reconcile: what Jenkins holds against what the state says (DESIGN §2.2 Orphans).
#include "rotation/pass_impl.hpp"
#include "rotation/token_name.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace rotation::detail {

namespace asio = boost::asio;

// Compares what Jenkins holds with the state, for every configured slot of the lane:
// lost mints and orphans of ours are revoked; a genuine name of ours that this database
// never made marks it stale; tokens of other instances, and names shaped like ours that
// our key did not make, are only reported; a current token revoked out of band makes its
// slot due at once; with `prune: all` the user's other tokens older than `lifetime` go too.
//
// Which token is ours (DESIGN §1.3, §2.1), in this order:
//  1. its uuid is in the state: ours, whatever its name (names minted before the MAC
//     existed stay ours this way);
//  2. its name is exactly the name of an attempt of this slot that recorded no uuid: a
//     lost mint or an orphan of ours: revoked. The same name on another slot's token, or
//     beside the uuid its attempt recorded, is a copy (an attempt mints one token): foreign;
//  3. its name carries our instance and a MAC our key gives for (controller, user, seq),
//     but no attempt of ours has that name: a name we made in a history this database
//     does not have, so the database is stale (restored from a backup);
//  4. anything else is foreign: our instance with a wrong MAC or none (forged, or a
//     legacy name this database never made) is reported and changes nothing; only
//     `prune: all` takes it, as any token of the user's older than lifetime.
//
// What a stale database stops, and why no more: rotation stops only for the slots whose
// tokens gave it away (a new attempt there could take a seq, hence a name, that a live
// token of the same user already has, and a lost-mint lookup by that name would revoke
// the token a consumer holds); other slots keep rotating, since their new names cannot
// collide (the MAC covers the user) and finding stale names does not depend on the seq
// counter. Every revocation on the controller that rests on the database's view stops
// (orphans, prune, prune: all; a token this very pass minted and could not deliver is
// still revoked by its uuid): a restored database's view is old for every slot (an attempt
// planned before the backup and delivered after it looks like a lost mint), revoking is
// what cannot be undone, and waiting for the operator only delays clean-up. DESIGN §2.2
// says the same ("stop pruning that controller").
asio::awaitable<void>
Pass::reconcile(Lane& lane)
{
  auto& mine = lane.controller->slots;
  if (is_self(lane)) {
    // REST lists no tokens (api/json exports none): auth: self never learns of tokens it
    // did not make, and removes the ones of ours it cannot name with revokeAllExcept
    // (sweep_self; docs/self-rotation.md).
    co_return;
  }
  if (mine.empty() || !co_await ensure_probed(lane)) {
    co_return;
  }
  const auto highest = store().highest_seq();
  if (!highest) {
    check(lane, highest.error(), "highest seq");
    co_return;
  }
  // List every slot's tokens, batches in flight together, then reconcile in order.
  // answers[first]: the answer for the batch that starts at mine[first].
  std::vector<std::optional<net::Result<jenkins::ListAnswer>>> answers(mine.size());
  co_await per_batch(lane, mine.size(),
                     [&](std::size_t first, std::size_t n) -> asio::awaitable<void> {
                       std::vector<std::string> users;
                       for (std::size_t k = first; k < first + n; ++k) {
                         users.push_back(mine[k]->user->user);
                       }
                       answers[first] = co_await list(lane, std::move(users));
                     });
  if (stopping()) {
    co_return; // some batches were not listed
  }
  for (const auto& listed : answers) {
    if (listed && !*listed) {
      util::log::error("controller {}: listing tokens: {}", lane.name(), listed->error().message);
      co_return;
    }
  }
  std::vector<Revoke> to_revoke;
  {
    // What reconcile notes (audit entries) is written a transaction per chunk of slots;
    // between chunks the io loop runs (10,000 slots take seconds on a busy host).
    std::optional<state::Transaction> tx;
    std::size_t in_tx = 0;
    for (std::size_t first = 0; first < mine.size(); ++first) {
      if (!answers[first]) {
        continue; // not the start of a batch
      }
      if (in_tx >= k_yield_every) {
        commit(lane, tx, "reconcile");
        in_tx = 0;
        co_await yield();
      }
      if (!tx && !m_dry_run) {
        if (auto t = begin(lane, "reconcile")) {
          tx.emplace(std::move(*t));
        }
      }
      auto& listed = **answers[first];
      lane.usage_statistics = listed.usage_statistics;
      lane.jenkins_now_ms = listed.clock.now_ms;
      for (std::size_t k = 0; first + k < mine.size() && k < listed.users.size(); ++k) {
        reconcile_slot(lane, *mine[first + k], listed.users[k], *highest, to_revoke);
        ++in_tx;
      }
      answers[first].reset(); // done with it: the memory goes back as the loop goes on
    }
    commit(lane, tx, "reconcile");
  }
  if (!lane.stale.empty()) {
    for (const auto& [slot, message] : lane.stale_slots) {
      util::log::error("{}", message);
      lane.errors.push_back(message);
    }
    co_return; // no revocation on a stale database
  }
  if (m_dry_run) {
    co_return;
  }
  const auto gone = co_await revoke(lane, std::move(to_revoke));
  auto tx = begin(lane, "reconcile revokes");
  for (const auto& uuid : gone) {
    if (auto t = store().token(uuid); t && *t && (*t)->role != state::TokenRole::current) {
      check(lane, store().mark_revoked(uuid, now()), "revoked");
    }
    lane.live.erase(uuid);
  }
  commit(lane, tx, "reconcile revokes");
}

// An action of reconcile: audited when done, listed when previewed.
void
Pass::note(Lane& lane, const SlotEntry& s, std::optional<state::Seq> seq, std::string_view event,
           const std::string& text)
{
  if (m_dry_run) {
    lane.preview.push_back(fmt::format("{}: {}", s.slot_name, text));
  } else {
    audit(&s, seq, event, text);
  }
}

void
Pass::foreign_token(Lane& lane, const SlotEntry& s, const jenkins::TokenInfo& t,
                    std::vector<Revoke>& to_revoke)
{
  const auto& policy = s.user->policy;
  const bool old = t.created_ms &&
                   lane.jenkins_now_ms - *t.created_ms >
                     std::chrono::duration_cast<std::chrono::milliseconds>(policy.lifetime).count();
  if (policy.prune == config::PrunePolicy::all && old && !t.legacy) {
    to_revoke.push_back({ s.user->user, t.uuid, RevokeReason::foreign_pruned });
    note(lane, s, std::nullopt, "prune_all",
         fmt::format("revoke \"{}\" (prune: all, older than lifetime)", t.name));
  }
}

void
Pass::reconcile_slot(Lane& lane, SlotEntry& s, const jenkins::UserTokens& listed,
                     state::Seq highest, std::vector<Revoke>& to_revoke)
{
  if (listed.error) {
    return; // an unknown user fails at mint time, with its own backoff
  }
  // A slot the state does not know yet (a preview before the first pass) has no token.
  const auto row = slot_row(s).value_or(state::Slot{});
  const auto& policy = s.user->policy;
  const auto user_key = config::fold_user_id(s.user->user);
  std::set<std::string> in_jenkins;
  for (const auto& t : listed.tokens) {
    in_jenkins.insert(t.uuid);
    lane.live[t.uuid] = t;
    const auto ours = parse_token_name(t.name, policy.token_prefix);
    if (!ours) {
      foreign_token(lane, s, t, to_revoke); // someone else's token
      continue;
    }
    if (ours->instance != store().instance_id()) {
      util::log::info("{}: token \"{}\" belongs to another instance ({}); left alone", s.slot_name,
                      t.name, ours->instance);
      if (m_dry_run) {
        lane.preview.push_back(fmt::format("{}: keep \"{}\" (another instance, {})", s.slot_name,
                                           t.name, ours->instance));
      }
      continue;
    }
    auto known = store().token(t.uuid);
    if (known && *known) {
      const auto role = (*known)->role;
      if (role == state::TokenRole::revoked || (t.expired && role != state::TokenRole::current)) {
        to_revoke.push_back(
          { s.user->user, t.uuid, t.expired ? RevokeReason::expired : RevokeReason::orphan });
        if (m_dry_run) {
          lane.preview.push_back(
            fmt::format("{}: revoke \"{}\" ({})", s.slot_name, t.name,
                        t.expired ? "expired in Jenkins" : "revoked in the state"));
        }
      } else if (t.expired) {
        // Jenkins expired the current token: its consumers are locked out until the
        // next one lands, so rotate at once.
        util::log::warning("{}: Jenkins reports the current token expired: rotating at once",
                           s.slot_name);
        if (m_dry_run) {
          lane.preview.push_back(
            fmt::format("{}: rotate at once (current token expired in Jenkins)", s.slot_name));
        } else {
          check(lane, store().set_next_due(*s.id, now()), "next due");
        }
      }
      continue;
    }
    // Our instance, a uuid the state never recorded: ours only by name (see above).
    const auto attempt = store().attempt_named(t.name);
    if (!attempt) {
      check(lane, attempt.error(), "attempt by name");
      continue;
    }
    if (*attempt && s.id && (*attempt)->slot == *s.id && !(*attempt)->token_uuid) {
      // A lost mint or an orphan (DESIGN §2.2). Its attempt is closed (open ones were
      // settled by resume).
      to_revoke.push_back({ s.user->user, t.uuid, RevokeReason::orphan });
      note(lane, s, ours->seq, "orphan",
           fmt::format("revoke \"{}\" (ours, not in the state)", t.name));
      continue;
    }
    if (!*attempt && genuine_token_name(*ours, store().name_key(), s.user->controller, user_key)) {
      const auto message = fmt::format(
        "controller {}: token \"{}\" of {} carries this database's instance and a valid name MAC "
        "(seq {}), but no attempt here made it (the highest seq is {}): the database is stale "
        "(restored from a backup?); revoking on this controller and rotating {} are stopped "
        "until an operator resolves it",
        lane.name(), t.name, s.user->user, ours->seq, highest, s.slot_name);
      if (lane.stale.empty()) {
        lane.stale = message;
      }
      lane.stale_slots.emplace(&s, message);
      continue;
    }
    // Shaped like ours, but not ours: a copy of one of our names, a wrong or missing MAC.
    const char* why = *attempt    ? "copies the name of another token of ours"
                      : ours->mac ? "carries a name MAC our key did not make"
                                  : "has a name without MAC that no attempt here made";
    util::log::warning("{}: token \"{}\" is named like ours but {}: not ours (forged?); left to "
                       "its owner",
                       s.slot_name, t.name, why);
    if (m_dry_run) {
      lane.preview.push_back(
        fmt::format("{}: keep \"{}\" (named like ours, but {})", s.slot_name, t.name, why));
    }
    foreign_token(lane, s, t, to_revoke);
  }
  if (row.current_uuid && in_jenkins.count(*row.current_uuid) == 0) {
    util::log::warning("{}: the current token is gone from Jenkins (revoked out of band?): "
                       "rotating at once",
                       s.slot_name);
    if (m_dry_run) {
      lane.preview.push_back(
        fmt::format("{}: rotate at once (the current token is gone from Jenkins)", s.slot_name));
    } else {
      check(lane, store().mark_current_gone(*row.current_uuid, now()), "current gone");
    }
  }
}

} // namespace rotation::detail
