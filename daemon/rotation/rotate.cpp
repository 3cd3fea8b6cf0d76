// Rotating the due slots of a lane in batches: plan, mint, seal and persist, verify
// (DESIGN §2.2), then delivery.cpp delivers and commits.
#include "rotation/engine.hpp"
#include "rotation/pass_impl.hpp"
#include "rotation/token_name.hpp"
#include "schedule/schedule.hpp"
#include "util/crash_point.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

namespace rotation::detail {

namespace asio = boost::asio;

asio::awaitable<void>
Pass::rotate(Lane& lane)
{
  const auto t = now();
  std::vector<Work*> due;
  std::size_t seen = 0;
  for (auto* s : lane.controller->slots) {
    if (++seen % k_yield_every == 0) {
      co_await yield();
    }
    auto row = slot_row(*s);
    if (!row) {
      continue;
    }
    bool go = m_request.force || named(*s);
    // Due-ness is read here, from the state as it is now: a slot the scheduler queued that
    // another pass rotated since (a forced rotate, the previous pass) is not rotated twice.
    if (!go && (m_request.kind == PassKind::full || if_due(*s))) {
      go = next_due(*s->user, row, t) <= t || sinks_changed(store(), *s, *row);
    }
    if (!go) {
      continue;
    }
    // An attempt of this slot still open (resumed above but not committed) keeps its
    // sinks: do not stack a second one on top within the same pass.
    const bool busy = std::any_of(lane.reports.begin(), lane.reports.end(), [&](const auto& r) {
      return r.slot() == s->slot_name && r.result == SlotResult::delivering;
    });
    if (busy) {
      continue;
    }
    auto& w = lane.add_work(*s);
    if (row->current_uuid) {
      w.old_uuid = row->current_uuid;
      if (auto tok = store().token(*row->current_uuid); tok && *tok) {
        w.report.old_age = t - (*tok)->created;
      }
    }
    util::log::debug("{}: due", s->slot_name);
    due.push_back(&w);
  }
  if (due.empty()) {
    co_return;
  }
  const auto refuse = [&](FailureKind kind, const std::string& message) {
    for (auto* w : due) {
      w->mark(SlotResult::error, kind, message);
      report(lane, w->report);
    }
  };
  // A stale database stops rotation only for the slots whose tokens gave it away
  // (reconcile.cpp says why); the others rotate, their old tokens retire when it is resolved.
  if (!lane.stale_slots.empty()) {
    std::vector<Work*> go;
    for (auto* w : due) {
      if (const auto it = lane.stale_slots.find(w->slot); it != lane.stale_slots.end()) {
        w->mark(SlotResult::error, FailureKind::stale_database, it->second);
        report(lane, w->report);
      } else {
        go.push_back(w);
      }
    }
    due = std::move(go);
    if (due.empty()) {
      co_return;
    }
  }
  if (!co_await ensure_probed(lane)) {
    refuse(FailureKind::network, lane.probe_error);
    co_return;
  }
  // Batches overlap: twice max_concurrent of them at once, so that while some verify
  // or write their sinks, others keep the controller's max_concurrent script slots busy
  // minting (the client holds the scripts to max_concurrent and the verifications to
  // verify_concurrent, whatever is asked). A stop starts no new batch.
  co_await per_batch(
    lane, due.size(),
    [&](std::size_t first, std::size_t n) -> asio::awaitable<void> {
      co_await rotate_batch(
        lane, std::vector<Work*>(due.begin() + static_cast<std::ptrdiff_t>(first),
                                 due.begin() + static_cast<std::ptrdiff_t>(first + n)));
    },
    2);
  for (auto* w : due) {
    if (w->seq == 0) {
      w->report.result = SlotResult::error; // its batch never started
      w->report.failure = FailureKind::stopped;
      w->report.message = "stopped before its batch started";
    }
    report(lane, w->report);
  }
}

// Rotates one batch of due slots of one controller.
asio::awaitable<void>
Pass::rotate_batch(Lane& lane, std::vector<Work*> batch, bool second_try)
{
  const auto t = now();
  {
    auto tx = begin(lane, "plan");
    for (auto* w : batch) {
      auto seq = store().next_seq();
      if (!seq) {
        check(lane, seq.error(), "next seq");
        co_return;
      }
      w->seq = *seq;
      auto name = make_token_name(w->slot->user->policy.token_prefix, store().instance_id(),
                                  store().name_key(), w->slot->user->controller,
                                  config::fold_user_id(w->slot->user->user), *seq);
      if (!name) {
        check(lane, name.error(), "token name");
        co_return;
      }
      w->name = std::move(*name);
      w->report.new_token = w->name;
      w->report.result = SlotResult::error;
      if (!check(lane, store().create_attempt(w->seq, *w->slot->id, w->name, t), "plan")) {
        co_return;
      }
    }
    if (!commit(lane, tx, "plan")) {
      for (auto* w : batch) {
        w->report.failure = FailureKind::state;
        w->report.message = "the planned attempts were not written";
      }
      co_return;
    }
  }
  util::crash_point("after_planning");
  std::vector<jenkins::MintItem> items;
  for (auto* w : batch) {
    // The lifetime, not an instant: the script adds it to Jenkins' own now (issue 19 #11).
    items.push_back(
      { w->slot->user->user, w->name,
        std::chrono::duration_cast<std::chrono::seconds>(w->slot->user->policy.lifetime) });
  }
  // Not a conditional expression around two co_awaits: GCC 12 miscompiles that.
  std::optional<net::Result<jenkins::MintAnswer>> got;
  if (is_self(lane)) {
    got.emplace(co_await mint_self(lane, batch, t));
  } else {
    got.emplace(co_await mint(lane, std::move(items)));
  }
  auto& answer = *got;
  if (!answer) {
    const auto& f = answer.error();
    const bool maybe_minted = f.kind == net::FailureKind::outcome_unknown ||
                              f.kind == net::FailureKind::script_error ||
                              f.kind == net::FailureKind::bad_output;
    if (maybe_minted) {
      // The script may have run: find the names and revoke them (DESIGN §2.2).
      util::log::warning("controller {}: mint: {}; looking the names up", lane.name(), f.message);
      auto settled = co_await settle_lost_mints(lane, batch);
      if (!settled.empty() && !second_try && !stopping()) {
        // Every settled lost mint is revoked or was never made: mint once more under
        // new seqs (DESIGN §2.2 "mints again under a new seq").
        for (auto* w : settled) {
          w->report.message.clear();
        }
        co_await rotate_batch(lane, std::move(settled), true);
      }
    } else {
      auto tx = begin(lane, "failed mints");
      // A 500 here is the script console's, not a user outside the realm (verify's).
      const auto kind =
        f.kind == net::FailureKind::http_status ? FailureKind::other : failure_kind(f);
      for (auto* w : batch) {
        fail(lane, *w, kind, f.message);
      }
      commit(lane, tx, "failed mints");
    }
    co_return;
  }
  util::crash_point("after_mint_answer");
  // Seal and persist every minted token of the batch in one transaction.
  std::vector<Work*> minted;
  std::vector<Work*> lost; // auth: self: items whose answer was lost (settled below)
  {
    auto tx = begin(lane, "minted");
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto* w = batch[i];
      if (i > 0) {
        util::crash_point("between_batch_items");
      }
      jenkins::MintResult missing;
      auto& item = i < answer->items.size() ? answer->items[i] : missing;
      if (!item.minted && item.error && item.error->kind == "lost") {
        util::log::warning("{}: mint: {}; asking /whoAmI with its value", w->slot->slot_name,
                           item.error->message);
        lost.push_back(w);
        continue;
      }
      if (!item.minted) {
        const jenkins::ItemError none{ "missing", "no answer for this item" };
        const auto& e = item.error ? *item.error : none;
        fail(lane, *w, failure_kind(e),
             fmt::format("mint for {}: {}: {}", w->slot->user->user, e.kind, e.message));
        continue;
      }
      auto envelopes = seal_all(lane, *w, *item.minted, t);
      state::MintedToken mt{ item.minted->uuid, t, t + w->slot->user->policy.lifetime,
                             std::nullopt };
      if (item.minted->jenkins_expires_ms) {
        mt.jenkins_expires =
          state::Time(std::chrono::seconds(*item.minted->jenkins_expires_ms / 1000));
      }
      if (!envelopes) {
        // Without envelopes the token can never be delivered: record it, then fail so
        // the prune revokes it.
        check(lane, store().mark_minted(w->seq, mt, {}, t), "minted");
        fail(lane, *w, FailureKind::other,
             fmt::format("sealing failed: {}", envelopes.error().message));
        continue;
      }
      if (!check(lane, store().mark_minted(w->seq, mt, *envelopes, t), "minted")) {
        fail(lane, *w, FailureKind::state, "the minted token was not recorded");
        continue;
      }
      w->minted = std::move(*item.minted);
      minted.push_back(w);
    }
    if (!commit(lane, tx, "minted")) {
      // The minted rows are gone with the transaction: these tokens are unaccounted for
      // in the state until the next reconcile finds them as orphans and revokes them.
      for (auto* w : minted) {
        w->report.result = SlotResult::error;
        w->report.failure = FailureKind::state;
        w->report.message = "the minted token was not recorded; the next pass revokes it";
        w->minted->token = crypto::SecretBytes();
      }
      co_return;
    }
  }
  util::crash_point("after_minted");
  // Verify each new token as its user (DESIGN §1.1), as many at once as the
  // controller's verify_concurrent lets the client send (beside the scripts).
  std::vector<std::optional<net::Failure>> refusals(minted.size());
  co_await for_each_concurrently(
    minted.size(), static_cast<std::size_t>(lane.controller->config->verify_concurrent),
    [&](std::size_t i) -> asio::awaitable<void> {
      auto* w = minted[i];
      auto v = co_await verify(lane, w->slot->user->user, w->minted->token);
      w->minted->token = crypto::SecretBytes(); // the plain value is not needed any more
      if (!v) {
        refusals[i] = v.error();
      }
    });
  std::vector<Work*> verified;
  std::vector<Revoke> refused;
  {
    auto tx = begin(lane, "verified");
    for (std::size_t i = 0; i < minted.size(); ++i) {
      auto* w = minted[i];
      if (const auto& f = refusals[i]) {
        refused.push_back({ w->slot->user->user, w->minted->uuid, RevokeReason::failed_attempt });
        // A refusal right after the mint is what a clock far off looks like: say so.
        fail(lane, *w, failure_kind(*f),
             fmt::format("verify: {}{}", f->message,
                         f->kind == net::FailureKind::auth ? skew_note(lane) : std::string()));
        continue;
      }
      if (check(lane, store().mark_verified(w->seq, now()), "verified")) {
        verified.push_back(w);
      }
    }
    if (!commit(lane, tx, "verified")) {
      // Still `minted` in the state: the next pass revokes them and mints anew.
      for (auto* w : verified) {
        w->mark(SlotResult::error, FailureKind::state, "the verified attempt was not recorded");
      }
      verified.clear();
    }
  }
  util::crash_point("after_verify");
  co_await revoke_and_record(lane, std::move(refused));
  co_await deliver_and_commit(lane, verified);
  if (!lost.empty()) {
    auto settled = co_await settle_lost_mints(lane, lost);
    if (!settled.empty() && !second_try && !stopping()) {
      for (auto* w : settled) {
        w->report.message.clear();
      }
      co_await rotate_batch(lane, std::move(settled), true);
    }
  }
}

void
Pass::fail(Lane& lane, Work& w, FailureKind kind, const std::string& message)
{
  const auto t = now();
  check(lane, store().fail_attempt(w.seq, message, t), "fail attempt");
  const auto row = slot_row(*w.slot);
  const int failures = row ? row->consecutive_failures : 1;
  check(lane, store().set_backoff(*w.slot->id, t + slot_backoff(failures, kind)), "backoff");
  w.mark(SlotResult::failed, kind, message);
  util::log::error("{}: {}", w.slot->slot_name, message);
}

// Seals the new token once per sink for that sink's recipients.
util::Result<std::vector<state::Envelope>>
Pass::seal_all(Lane& lane, Work& w, const jenkins::Minted& m, state::Time created)
{
  const auto& u = *w.slot->user;
  crypto::Envelope info;
  info.controller = u.controller;
  info.url = lane.controller->config->url;
  info.user = u.user;
  info.token_name = w.name;
  info.token_uuid = m.uuid;
  info.created = schedule::format_utc(created);
  info.expires = schedule::format_utc(created + u.policy.lifetime);
  if (!m.jenkins_expires.empty()) {
    info.jenkins_expires = m.jenkins_expires;
  }
  std::vector<state::Envelope> out;
  for (std::size_t i = 0; i < w.slot->sinks.size(); ++i) {
    auto sealed = crypto::Envelope::seal(info, m.token, *w.slot->sinks[i].recipients);
    if (!sealed) {
      return sealed.error();
    }
    if (m_core.signing_key) {
      sealed->sign(*m_core.signing_key);
    }
    out.push_back({ static_cast<int>(i), w.slot->sinks[i].hash, sealed->to_json() });
  }
  return out;
}

} // namespace rotation::detail
