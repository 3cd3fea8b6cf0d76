// Prune: revoking our tokens past retire_at or their deadline (DESIGN §2.2 Prune).
#include "rotation/pass_impl.hpp"
#include "util/crash_point.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

namespace rotation::detail {

namespace asio = boost::asio;

namespace {

RevokeReason
revoke_reason(state::PruneReason reason)
{
  switch (reason) {
    case state::PruneReason::retired:
      return RevokeReason::superseded;
    case state::PruneReason::expired:
      return RevokeReason::expired;
    case state::PruneReason::failed_mint:
      return RevokeReason::failed_attempt;
  }
  return RevokeReason::expired;
}

} // namespace

asio::awaitable<void>
Pass::prune(Lane& lane)
{
  if (!lane.stale.empty()) {
    co_return; // a stale database must not prune (DESIGN §2.2 Orphans)
  }
  auto candidates = store().tokens_to_prune(now());
  if (!candidates) {
    check(lane, candidates.error(), "prune");
    co_return;
  }
  std::vector<Revoke> items;
  {
    auto tx = begin(lane, "prune checks"); // the still-used checks' audit entries
    for (const auto& c : *candidates) {
      if (c.token.controller != lane.name() || !owns_slot(lane, c.token.slot)) {
        continue; // another lane's; a controller gone from the config cannot be reached
      }
      if (c.reason == state::PruneReason::retired) {
        check_still_used(lane, c.token);
      }
      items.push_back({ c.token.user_display, c.token.uuid, revoke_reason(c.reason) });
    }
    commit(lane, tx, "prune checks");
  }
  if (!items.empty()) {
    const auto gone = co_await revoke(lane, std::move(items));
    util::crash_point("mid_prune");
    record_revoked(lane, gone);
    util::log::info("controller {}: pruned {} token{}", lane.name(), gone.size(),
                    gone.size() == 1 ? "" : "s");
  }
  if (is_self(lane)) {
    co_await sweep_self(lane); // after the retired ones went: nothing else must live
  }
}

bool
Pass::owns_slot(const Lane& lane, state::SlotId slot)
{
  const auto in = [&](const detail::Controller& c) {
    return std::any_of(c.slots.begin(), c.slots.end(),
                       [&](const SlotEntry* s) { return s->id == slot; });
  };
  if (lane.controller->is_self_part()) {
    return in(*lane.controller);
  }
  // The admin lane keeps the tokens of removed slots too: its admin can revoke them.
  return lane.controller->self_part == nullptr || !in(*lane.controller->self_part);
}

// plan --connect: what prune would do now, changing nothing.
void
Pass::preview_prune(std::vector<std::string>& out)
{
  auto candidates = store().tokens_to_prune(now());
  if (!candidates) {
    return;
  }
  for (const auto& p : *candidates) {
    const auto it = m_lanes.find(p.token.controller);
    if (m_request.controller && it == m_lanes.end()) {
      continue; // outside the lane asked for
    }
    const bool stale = it != m_lanes.end() && !it->second.stale.empty();
    out.push_back(fmt::format("{}/{}: {} \"{}\" ({})", p.token.controller, p.token.user_display,
                              stale ? "would revoke, but the database is stale:" : "revoke",
                              p.token.name, state::to_string(p.reason)));
  }
}

// A previous token used after the cut-over means a consumer still holds it: it is revoked
// at retire_at all the same, but the operator hears of it (DESIGN §2.2).
void
Pass::check_still_used(Lane& lane, const state::Token& token)
{
  const auto& slots = lane.controller->slots;
  const auto it = std::find_if(slots.begin(), slots.end(),
                               [&](const SlotEntry* s) { return s->id == token.slot; });
  const SlotEntry* slot = it != slots.end() ? *it : nullptr;
  const std::string slot_name = slot ? slot->slot_name : token.user_display;
  if (!lane.usage_statistics.value_or(false)) {
    audit(
      slot, token.seq, "previous_use_unknown",
      fmt::format("{}: usage statistics are off in Jenkins: whether {} is still used is unknown",
                  slot_name, token.name));
    return;
  }
  const auto live = lane.live.find(token.uuid);
  if (live == lane.live.end() || !live->second.last_use_ms || !token.retire_at) {
    return;
  }
  auto row = store().slot(token.slot);
  if (!row || !row->last_rotation) {
    return;
  }
  // last_rotation has whole seconds: a use within the cut-over's own second may have come
  // before it, so only later uses count.
  const auto cut_over_ms = (row->last_rotation->time_since_epoch().count() + 1) * 1000;
  if (*live->second.last_use_ms > cut_over_ms) {
    util::log::warning("{}: previous token {} was used after the cut-over ({} uses in all); "
                       "revoking it as scheduled: a consumer has not picked up the new token",
                       slot_name, token.name, live->second.use_counter);
    audit(slot, token.seq, "previous_still_used",
          fmt::format("{} used after the cut-over", token.name));
  }
}

} // namespace rotation::detail
