// Resuming the attempts a previous process (or pass) left open, and settling lost mints
// (DESIGN §2.2 Resume, Lost mints).
#include "rotation/pass_impl.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

#include <span>

namespace rotation::detail {

namespace asio = boost::asio;

asio::awaitable<void>
Pass::resume(Lane& lane)
{
  auto open = store().open_attempts();
  if (!open) {
    check(lane, open.error(), "open attempts");
    co_return;
  }
  std::vector<Work*> lost;
  std::vector<Work*> deliverable;
  std::vector<Revoke> to_revoke;
  {
    auto tx = begin(lane, "resume");
    for (const auto& a : *open) {
      auto it = std::find_if(lane.controller->slots.begin(), lane.controller->slots.end(),
                             [&](const SlotEntry* s) { return s->id == a.slot; });
      if (it == lane.controller->slots.end()) {
        continue; // another lane's, or a removed slot: its tokens are pruned, never delivered
      }
      auto& s = **it;
      auto& w = lane.add_work(s);
      w.seq = a.seq;
      w.name = a.token_name;
      w.report.new_token = a.token_name;
      switch (a.state) {
        case state::AttemptState::planned:
          lost.push_back(&w);
          break;
        case state::AttemptState::minted:
          // The plain value died with the process: the token can never reach a sink.
          if (a.token_uuid) {
            to_revoke.push_back({ s.user->user, *a.token_uuid, RevokeReason::failed_attempt });
          }
          fail(lane, w, FailureKind::other,
               "minted before a restart; the plain token is gone, minting anew");
          check(lane, store().set_backoff(*s.id, std::nullopt), "clear backoff");
          break;
        case state::AttemptState::verified:
        case state::AttemptState::delivering: {
          bool changed = false;
          if (auto envs = store().envelopes(a.seq)) {
            for (const auto& e : *envs) {
              if (static_cast<std::size_t>(e.sink_index) >= s.sinks.size() ||
                  s.sinks[static_cast<std::size_t>(e.sink_index)].hash != e.sink_hash) {
                changed = true;
              }
            }
          }
          if (changed) {
            // A new attempt supersedes it at once; delivered sinks keep the old token
            // until the new one commits.
            check(lane, store().set_next_due(*s.id, now()), "next due");
            audit(&s, a.seq, "superseded", "a sink's config changed before delivery finished");
          } else {
            deliverable.push_back(&w);
          }
          break;
        }
        default:
          break;
      }
    }
    commit(lane, tx, "resume");
  }
  co_await revoke_and_record(lane, std::move(to_revoke));
  if (!lost.empty()) {
    co_await settle_lost_mints(lane, lost);
    for (auto* w : lost) {
      report(lane, w->report);
    }
  }
  // Before a resumed delivery: the token must still be in Jenkins with life left, else
  // delivering it would hand consumers a dead token (DESIGN §2.2 Resume).
  const auto living = co_await still_alive(lane, deliverable);
  std::vector<Work*> alive;
  {
    auto tx = begin(lane, "superseded");
    for (std::size_t i = 0; i < deliverable.size(); ++i) {
      auto* w = deliverable[i];
      if (!living[i]) {
        check(lane, store().set_next_due(*w->slot->id, now()), "next due");
        audit(w->slot, w->seq, "superseded",
              "the resumed attempt's token is gone or past its deadline: minting anew");
        continue;
      }
      w->resumed = true;
      alive.push_back(w);
    }
    commit(lane, tx, "superseded");
  }
  // A stop request leaves them open (deliver_and_commit delivers nothing more).
  co_await deliver_and_commit(lane, alive);
  for (auto* w : alive) {
    report(lane, w->report);
  }
}

asio::awaitable<std::vector<Work*>>
Pass::settle_lost_mints(Lane& lane, std::vector<Work*> lost)
{
  std::vector<Work*> settled;
  const auto stay_open = [&](const std::string& why) {
    for (auto* w : lost) {
      w->mark(SlotResult::error, FailureKind::outcome_unknown, why);
    }
  };
  if (lost.empty()) {
    co_return settled;
  }
  if (is_self(lane)) {
    co_return co_await settle_self_lost(lane, std::move(lost)); // by value, not by name
  }
  if (!co_await ensure_probed(lane)) {
    stay_open(fmt::format("lost mint not looked up: {}", lane.probe_error));
    co_return settled;
  }
  std::vector<std::string> users;
  for (auto* w : lost) {
    users.push_back(w->slot->user->user);
  }
  auto listed = co_await list(lane, users);
  if (!listed) {
    util::log::error("controller {}: looking for lost mints: {}", lane.name(),
                     listed.error().message);
    stay_open(fmt::format("lost mint not looked up: {}", listed.error().message));
    co_return settled;
  }
  // found[i]: the uuid Jenkins lists under lost[i]'s name, if any.
  std::vector<std::optional<std::string>> found(lost.size());
  std::vector<Revoke> items;
  for (std::size_t i = 0; i < lost.size() && i < listed->users.size(); ++i) {
    for (const auto& t : listed->users[i].tokens) {
      if (t.name == lost[i]->name) {
        found[i] = t.uuid;
        items.push_back({ lost[i]->slot->user->user, t.uuid, RevokeReason::lost_mint });
      }
    }
  }
  const auto gone = co_await revoke(lane, items);
  auto tx = begin(lane, "lost mints");
  for (std::size_t i = 0; i < lost.size(); ++i) {
    auto& w = *lost[i];
    if (found[i] && gone.count(*found[i]) == 0) {
      // Ours, in Jenkins, and still there: the attempt stays open (planned) until a pass
      // revokes it; the pass fails meanwhile.
      const auto why = fmt::format("lost mint {} found by name, but its revoke failed: it stays "
                                   "open and is revoked by the next pass",
                                   w.name);
      audit(w.slot, w.seq, "lost_mint_revoke_failed", why);
      util::log::error("{}: {}", w.slot->slot_name, why);
      w.mark(SlotResult::error, FailureKind::outcome_unknown, why);
      continue;
    }
    const auto outcome =
      found[i] ? "lost mint found by name and revoked" : "lost mint: nothing found";
    if (!check(lane, store().abandon_attempt(w.seq, outcome, now()), "abandon")) {
      w.report.result = SlotResult::error;
      w.report.failure = FailureKind::state;
      continue;
    }
    w.mark(SlotResult::abandoned, FailureKind::outcome_unknown, outcome);
    settled.push_back(&w);
  }
  co_return commit_settled(lane, tx, lost, std::move(settled));
}

// Which resumed attempts' tokens are still listed by Jenkins, unexpired and before the
// daemon's deadline? One list script per batch_size users, up to max_concurrent at once.
// A failed list counts as "yes": delivery is what we were doing.
asio::awaitable<std::vector<bool>>
Pass::still_alive(Lane& lane, const std::vector<Work*>& works)
{
  std::vector<bool> alive(works.size(), false);
  std::vector<std::string> uuids(works.size());
  std::vector<std::size_t> indices; // to list
  for (std::size_t i = 0; i < works.size(); ++i) {
    auto token = store().token_by_seq(works[i]->seq);
    if (!token || !*token || (*token)->expires <= now()) {
      continue;
    }
    uuids[i] = (*token)->uuid;
    indices.push_back(i);
  }
  if (indices.empty()) {
    co_return alive;
  }
  if (is_self(lane) || !co_await ensure_probed(lane)) {
    // auth: self cannot list (REST): as for a failed list, delivery goes on.
    for (const auto i : indices) {
      alive[i] = true;
    }
    co_return alive;
  }
  co_await per_batch(lane, indices.size(),
                     [&](std::size_t first, std::size_t n) -> asio::awaitable<void> {
                       const std::span<const std::size_t> chunk(indices.data() + first, n);
                       std::vector<std::string> users;
                       for (const auto i : chunk) {
                         users.push_back(works[i]->slot->user->user);
                       }
                       auto listed = co_await list(lane, users);
                       for (std::size_t k = 0; k < chunk.size(); ++k) {
                         const auto i = chunk[k];
                         if (!listed || k >= listed->users.size() || listed->users[k].error) {
                           alive[i] = true;
                           continue;
                         }
                         for (const auto& t : listed->users[k].tokens) {
                           if (t.uuid == uuids[i]) {
                             alive[i] = !t.expired;
                           }
                         }
                       }
                     });
  co_return alive;
}

} // namespace rotation::detail
