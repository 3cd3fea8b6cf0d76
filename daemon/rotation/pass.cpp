#include "rotation/pass.hpp"

#include "rotation/engine.hpp"
#include "rotation/pass_impl.hpp"
#include "util/duration.hpp"
#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <algorithm>

namespace rotation {

std::string_view
to_string(SlotResult result)
{
  switch (result) {
    case SlotResult::committed:
      return "committed";
    case SlotResult::delivering:
      return "delivering";
    case SlotResult::failed:
      return "failed";
    case SlotResult::abandoned:
      return "abandoned";
    case SlotResult::not_due:
      return "not due";
    case SlotResult::error:
      return "error";
  }
  return "error";
}

std::string_view
to_string(FailureKind kind)
{
  switch (kind) {
    case FailureKind::none:
      return "none";
    case FailureKind::unknown_user:
      return "unknown_user";
    case FailureKind::not_in_realm:
      return "not_in_realm";
    case FailureKind::auth:
      return "auth";
    case FailureKind::network:
      return "network";
    case FailureKind::timeout:
      return "timeout";
    case FailureKind::outcome_unknown:
      return "outcome_unknown";
    case FailureKind::script_error:
      return "script_error";
    case FailureKind::bad_output:
      return "bad_output";
    case FailureKind::sink_rejected:
      return "sink_rejected";
    case FailureKind::sink_retryable:
      return "sink_retryable";
    case FailureKind::state:
      return "state";
    case FailureKind::stale_database:
      return "stale_database";
    case FailureKind::stopped:
      return "stopped";
    case FailureKind::other:
      return "other";
  }
  return "other";
}

std::string_view
to_string(RevokeReason reason)
{
  switch (reason) {
    case RevokeReason::superseded:
      return "superseded";
    case RevokeReason::expired:
      return "expired";
    case RevokeReason::orphan:
      return "orphan";
    case RevokeReason::lost_mint:
      return "lost_mint";
    case RevokeReason::foreign_pruned:
      return "foreign_pruned";
    case RevokeReason::failed_attempt:
      return "failed_attempt";
  }
  return "orphan";
}

std::string_view
to_string(RequestOp op)
{
  switch (op) {
    case RequestOp::probe:
      return "probe";
    case RequestOp::list:
      return "list";
    case RequestOp::mint:
      return "mint";
    case RequestOp::revoke:
      return "revoke";
    case RequestOp::verify:
      return "verify";
  }
  return "probe";
}

bool
PassResult::ok() const
{
  return errors.empty() && std::all_of(slots.begin(), slots.end(), [](const SlotReport& r) {
           return r.result == SlotResult::committed || r.result == SlotResult::not_due;
         });
}

std::string_view
to_string(AdminTokenResult result)
{
  switch (result) {
    case AdminTokenResult::rotated:
      return "rotated";
    case AdminTokenResult::failed:
      return "failed";
    case AdminTokenResult::lost:
      return "lost";
  }
  return "failed";
}

namespace detail {

namespace asio = boost::asio;

Work&
Lane::add_work(SlotEntry& slot)
{
  auto w = std::make_unique<Work>();
  w->slot = &slot;
  w->report.controller = slot.user->controller;
  w->report.user = slot.user->user;
  w->report.sinks_total = static_cast<int>(slot.sinks.size());
  works.push_back(std::move(w));
  return *works.back();
}

Pass::Pass(Core& core, PassRequest request, PassObserver* observer)
  : m_core(core)
  , m_request(std::move(request))
  , m_observer(observer)
  , m_dry_run(m_request.kind == PassKind::preview)
{
  // Looked up once per slot of the lane: sorted, so a wave of thousands stays O(n log n).
  std::sort(m_request.slots.begin(), m_request.slots.end());
  std::sort(m_request.if_due.begin(), m_request.if_due.end());
  for (auto& [key, c] : m_core.controllers) {
    // An admin controller's self part (its auth: self users) is a lane of its own, in
    // scope with its controller.
    if (!m_request.controller || *m_request.controller == c.config->name) {
      m_lanes[key].controller = &c;
    }
  }
}

bool
Pass::in_scope(const SlotEntry& slot) const
{
  return m_lanes.count(slot.user->controller) != 0;
}

bool
Pass::named(const SlotEntry& slot) const
{
  return std::binary_search(m_request.slots.begin(), m_request.slots.end(), slot.slot_name);
}

bool
Pass::if_due(const SlotEntry& slot) const
{
  return std::binary_search(m_request.if_due.begin(), m_request.if_due.end(), slot.slot_name);
}

asio::awaitable<PassResult>
Pass::run()
{
  const auto started = std::chrono::steady_clock::now();
  PassResult result;
  for (const auto& name : m_request.slots) {
    const bool known = std::any_of(m_core.slots.begin(), m_core.slots.end(),
                                   [&](const SlotEntry& s) { return s.slot_name == name; });
    if (!known) {
      result.errors.push_back(fmt::format("unknown slot: {}", name));
    }
  }
  if (m_request.controller && m_lanes.empty()) {
    result.errors.push_back(fmt::format("unknown controller: {}", *m_request.controller));
  }
  // A plain bool, not co_await inside || (g++ 12 coroutines and conditional temporaries).
  bool rows = result.errors.empty() && !stopping();
  if (rows && !m_dry_run) {
    rows = co_await ensure_slot_rows(result.errors);
  }
  if (stopping()) {
    result.stopped = true;
  } else if (rows) {
    std::vector<Lane*> lanes;
    for (auto& [name, lane] : m_lanes) {
      lanes.push_back(&lane);
    }
    // One lane per controller, all at once: a slow or down controller holds up only itself.
    co_await for_each_concurrently(
      lanes.size(), lanes.size(),
      [&](std::size_t i) -> asio::awaitable<void> { co_await run_lane(*lanes[i]); });
    std::vector<std::string> probe_errors;
    for (auto& lane : lanes) {
      result.slots.insert(result.slots.end(), lane->reports.begin(), lane->reports.end());
      result.errors.insert(result.errors.end(), lane->errors.begin(), lane->errors.end());
      result.preview.insert(result.preview.end(), lane->preview.begin(), lane->preview.end());
      if (!lane->probe_error.empty()) {
        probe_errors.push_back(lane->probe_error);
      }
    }
    if (m_dry_run) {
      preview_prune(result.preview);
    } else if (m_request.kind == PassKind::full) {
      // The audit log keeps audit_retention of history (DESIGN §5).
      if (auto trimmed = store().trim_audit(now() - config().audit_retention); !trimmed) {
        result.errors.push_back(fmt::format("state: audit trim: {}", trimmed.error().message));
      } else if (*trimmed > 0) {
        util::log::debug("audit log: trimmed {} entries older than {}", *trimmed,
                         util::format_duration(config().audit_retention));
      }
    }
    result.errors.insert(result.errors.end(), probe_errors.begin(), probe_errors.end());
    result.stopped = stopping();
  }
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  if (m_observer) {
    m_observer->on_pass(m_request, result);
  }
  co_return result;
}

// The order of one controller's part of a pass; a stop request ends it at the next step.
asio::awaitable<void>
Pass::run_lane(Lane& lane)
{
  // The admin token first: a settled or rotated token serves the rest of the pass.
  if (!m_dry_run && !stopping()) {
    co_await admin_token(lane);
  }
  if (lane.controller->slots.empty()) {
    co_return;
  }
  if (m_dry_run) {
    co_await reconcile(lane);
  } else {
    co_await resume(lane);
    if (!stopping()) {
      co_await reconcile(lane);
    }
    if (!stopping() && m_request.kind != PassKind::prune) {
      co_await rotate(lane);
    }
    // Prune after every commit too (DESIGN §2.2), so a rotate pass prunes as well.
    if (!stopping()) {
      co_await prune(lane);
    }
  }
  // A self part's probe failure reaches its slots' reports; the controller's reachability
  // is its admin lane's (one answer per controller, not two racing ones).
  if (m_observer && !lane.controller->is_self_part()) {
    m_observer->on_controller(lane.name(), lane.probe_error.empty() && lane.variant.has_value(),
                              !lane.stale.empty());
  }
}

// The slots in scope without a state row get theirs before a pass that writes: a
// transaction per chunk, the io loop running between chunks (a first pass over 10,000 new
// slots).
asio::awaitable<bool>
Pass::ensure_slot_rows(std::vector<std::string>& errors)
{
  std::vector<SlotEntry*> missing;
  for (auto& s : m_core.slots) {
    if (in_scope(s) && !s.id) {
      missing.push_back(&s); // a row Engine::create found (same display name) stays
    }
  }
  for (std::size_t first = 0; first < missing.size(); first += k_yield_every) {
    if (first > 0) {
      co_await yield();
    }
    auto tx = store().begin();
    if (!tx) {
      errors.push_back(fmt::format("state: {}", tx.error().message));
      co_return false;
    }
    std::vector<std::pair<SlotEntry*, state::SlotId>> made;
    for (std::size_t i = first; i < std::min(missing.size(), first + k_yield_every); ++i) {
      auto& s = *missing[i];
      auto id =
        store().ensure_slot(s.user->controller, config::fold_user_id(s.user->user), s.user->user);
      if (!id) {
        errors.push_back(fmt::format("state: {}: {}", s.slot_name, id.error().message));
        co_return false;
      }
      made.emplace_back(&s, *id);
    }
    if (auto r = tx->commit(); !r) {
      errors.push_back(fmt::format("state: commit slots: {}", r.error().message));
      co_return false;
    }
    for (auto& [s, id] : made) {
      s->id = id;
    }
  }
  co_return true;
}

void
Pass::report(Lane& lane, const SlotReport& r)
{
  lane.reports.push_back(r);
  if (m_observer) {
    m_observer->on_slot(r);
  }
}

void
Pass::audit(const SlotEntry* slot, std::optional<state::Seq> seq, std::string_view event,
            std::string_view detail)
{
  if (auto r = store().append_audit(now(), slot ? slot->id : std::nullopt, seq, event, detail);
      !r) {
    util::log::error("audit log: {}", r.error().message);
  }
}

bool
Pass::check(Lane& lane, const util::Result<void>& written, std::string_view what)
{
  if (written) {
    return true;
  }
  const auto message = fmt::format("state: {}: {}", what, written.error().message);
  util::log::error("controller {}: {}", lane.name(), message);
  lane.errors.push_back(message);
  return false;
}

std::optional<state::Transaction>
Pass::begin(Lane& lane, std::string_view what)
{
  auto tx = store().begin();
  if (!tx) {
    // Each write is then its own transaction: slower, as safe.
    check(lane, tx.error(), fmt::format("begin {}", what));
    return std::nullopt;
  }
  return std::move(*tx);
}

std::vector<Work*>
Pass::commit_settled(Lane& lane, std::optional<state::Transaction>& tx,
                     const std::vector<Work*>& lost, std::vector<Work*> settled)
{
  if (!commit(lane, tx, "lost mints")) {
    for (auto* w : lost) {
      w->report.result = SlotResult::error;
      w->report.failure = FailureKind::state;
    }
    settled.clear();
  }
  return settled;
}

bool
Pass::commit(Lane& lane, std::optional<state::Transaction>& tx, std::string_view what)
{
  if (!tx) {
    return true;
  }
  auto r = tx->commit();
  tx.reset();
  return check(lane, r, fmt::format("commit {}", what));
}

std::optional<state::Slot>
Pass::slot_row(const SlotEntry& slot)
{
  if (!slot.id) {
    return std::nullopt;
  }
  auto row = store().slot(*slot.id);
  if (!row) {
    util::log::error("state: slot {}: {}", slot.slot_name, row.error().message);
    return std::nullopt;
  }
  return std::move(*row);
}

asio::awaitable<void>
Pass::yield()
{
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

asio::awaitable<void>
Pass::sleep(std::chrono::milliseconds d)
{
  if (stopping()) {
    co_return;
  }
  co_await m_core.stop.cancellable(
    [](asio::any_io_executor ex, std::chrono::milliseconds wait) -> asio::awaitable<void> {
      asio::steady_timer timer(ex, wait);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable)); // a stop cuts it short
    }(co_await asio::this_coro::executor, d));
}

} // namespace detail

} // namespace rotation
