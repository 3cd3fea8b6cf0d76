// Reconcile: what Jenkins holds against what the state says (DESIGN §2.2 Orphans).
#include "rotation/pass_impl.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace rotation::detail {

namespace asio = boost::asio;

namespace {

// A token name of ours: {prefix}{instance}-{seq:06} (DESIGN §2.1).
struct OurName
{
  std::string instance;
  state::Seq seq = 0;
};

std::optional<OurName>
parse_token_name(std::string_view name, std::string_view prefix)
{
  if (!name.starts_with(prefix)) {
    return std::nullopt;
  }
  name.remove_prefix(prefix.size());
  if (name.size() < 8 + 1 + 6 || name.size() > 8 + 1 + 18 || name[8] != '-') {
    return std::nullopt;
  }
  const auto instance = name.substr(0, 8);
  const auto digits = name.substr(9);
  const bool hex = std::all_of(instance.begin(), instance.end(), [](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
  });
  const bool dec =
    std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (!hex || !dec) {
    return std::nullopt;
  }
  return OurName{ std::string(instance), std::stoll(std::string(digits)) };
}

} // namespace

// Compares what Jenkins holds with the state, for every configured slot of the lane:
// lost mints and orphans of ours are revoked; a seq above the database's highest marks
// the database stale; tokens of other instances are only reported; a current token
// revoked out of band makes its slot due at once; with `prune: all` the user's other
// tokens older than `lifetime` go too.
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
    util::log::error("{}", lane.stale);
    lane.errors.push_back(lane.stale);
    co_return;
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
Pass::reconcile_slot(Lane& lane, SlotEntry& s, const jenkins::UserTokens& listed,
                     state::Seq highest, std::vector<Revoke>& to_revoke)
{
  if (listed.error) {
    return; // an unknown user fails at mint time, with its own backoff
  }
  // A slot the state does not know yet (a preview before the first pass) has no token.
  const auto row = slot_row(s).value_or(state::Slot{});
  const auto& policy = s.user->policy;
  std::set<std::string> in_jenkins;
  for (const auto& t : listed.tokens) {
    in_jenkins.insert(t.uuid);
    lane.live[t.uuid] = t;
    const auto ours = parse_token_name(t.name, policy.token_prefix);
    if (!ours) {
      // Someone else's token: only `prune: all` touches it, once older than lifetime
      // by Jenkins' own clock.
      const bool old =
        t.created_ms &&
        lane.jenkins_now_ms - *t.created_ms >
          std::chrono::duration_cast<std::chrono::milliseconds>(policy.lifetime).count();
      if (policy.prune == config::PrunePolicy::all && old && !t.legacy) {
        to_revoke.push_back({ s.user->user, t.uuid, RevokeReason::foreign_pruned });
        note(lane, s, std::nullopt, "prune_all",
             fmt::format("revoke \"{}\" (prune: all, older than lifetime)", t.name));
      }
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
    if (ours->seq > highest) {
      lane.stale = fmt::format(
        "controller {}: token \"{}\" of {} has seq {} but this state database has only reached "
        "{}: the database is stale (restored from a backup or reset?); pruning and rotation on "
        "this controller are stopped until an operator resolves it",
        lane.name(), t.name, s.user->user, ours->seq, highest);
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
    // Our name and instance, but a uuid the state never recorded: a lost mint or an
    // orphan (DESIGN §2.2). Its attempt is closed (open ones were settled by resume).
    to_revoke.push_back({ s.user->user, t.uuid, RevokeReason::orphan });
    note(lane, s, ours->seq, "orphan",
         fmt::format("revoke \"{}\" (ours, not in the state)", t.name));
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
