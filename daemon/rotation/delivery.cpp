// Delivery of a batch's envelopes to the sinks, then one transaction that commits each
// attempt, keeps it delivering (roll forward) or fails it (DESIGN §2.2, §6).
#include "rotation/pass_impl.hpp"
#include "util/backoff.hpp"
#include "util/crash_point.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

namespace rotation::detail {

namespace asio = boost::asio;

namespace {

// Slots whose sinks are written at once. Each slot's own sinks go one after another;
// file sinks wait for the disk on a pool of their own (sinks::FileSink).
constexpr std::size_t k_deliveries_in_flight = 16;

state::SinkOutcome
to_state(sinks::Status status)
{
  switch (status) {
    case sinks::Status::ok:
      return state::SinkOutcome::ok;
    case sinks::Status::retryable:
      return state::SinkOutcome::retryable;
    case sinks::Status::rejected:
      return state::SinkOutcome::rejected;
  }
  return state::SinkOutcome::retryable;
}

// A sink's delivery as a value whatever happens (a cancelled one included).
asio::awaitable<sinks::Outcome>
deliver_once(sinks::Sink& sink, const sinks::Delivery& d)
{
  try {
    co_return co_await sink.deliver(d);
  } catch (const std::exception& e) {
    co_return sinks::Outcome{ sinks::Status::retryable,
                              fmt::format("{}: {}", sink.describe(), e.what()) };
  }
}

} // namespace

// Delivers the attempt's envelopes, in sink order, to the sinks that do not hold them
// yet, retrying retryable failures with backoff. Returns how many sinks hold the token;
// the outcomes wait in w.sink_results for the batch's transaction. A stop request cuts
// a delivery and its retry sleeps short and starts no further sink.
asio::awaitable<int>
Pass::deliver(Work& w)
{
  auto envelopes = store().envelopes(w.seq);
  auto results = store().sink_results(w.seq);
  if (!envelopes || !results) {
    co_return 0;
  }
  auto attempt = store().attempt(w.seq);
  const std::string uuid =
    attempt && *attempt && (*attempt)->token_uuid ? *(*attempt)->token_uuid : std::string();
  int ok = 0;
  for (const auto& e : *envelopes) {
    const bool done = std::any_of(results->begin(), results->end(), [&](const auto& r) {
      return r.sink_index == e.sink_index && r.outcome == state::SinkOutcome::ok;
    });
    if (done) {
      ++ok;
      continue;
    }
    if (stopping()) {
      w.report.failure = FailureKind::stopped;
      w.report.message = "stopped before every sink was written";
      continue;
    }
    auto& entry = w.slot->sinks.at(static_cast<std::size_t>(e.sink_index));
    const sinks::Delivery d{ e.json,
                             w.slot->user->user,
                             w.slot->user->controller,
                             uuid,
                             w.name,
                             static_cast<std::uint64_t>(w.seq) };
    sinks::Outcome outcome;
    int attempt_no = 1;
    for (;; ++attempt_no) {
      outcome = co_await m_core.stop.cancellable(deliver_once(*entry.sink, d));
      if (outcome.status != sinks::Status::retryable || attempt_no >= config().retry.attempts ||
          stopping()) {
        break;
      }
      util::log::warning("{}: {}: {} (retrying)", w.slot->slot_name, entry.sink->describe(),
                         outcome.message);
      co_await sleep(util::full_jitter_delay(config().retry.initial, config().retry.max, attempt_no,
                                             m_core.rng));
      if (stopping()) {
        break;
      }
    }
    const auto so = to_state(outcome.status);
    w.sink_results.push_back({ e.sink_index, so, outcome.message, attempt_no });
    if (m_observer) {
      m_observer->on_sink(w.slot->user->controller, w.slot->user->user, entry.config->type, so);
    }
    if (outcome.ok()) {
      ++ok;
      util::crash_point("between_sinks");
    } else {
      util::log::error("{}: {}: {}", w.slot->slot_name, entry.sink->describe(), outcome.message);
      w.report.failure = stopping()                           ? FailureKind::stopped
                         : so == state::SinkOutcome::rejected ? FailureKind::sink_rejected
                                                              : FailureKind::sink_retryable;
      w.report.message = outcome.message;
    }
  }
  co_return ok;
}

// Records the slot's sink results, then commits the attempt, or keeps it delivering
// (roll forward), or fails it when no sink holds the token (its token is then revoked by
// the prune). A stop leaves the attempt open for the next pass to resume. Runs inside
// the batch's transaction: writes only, no co_await.
void
Pass::settle(Lane& lane, Work& w, int ok)
{
  const int total = static_cast<int>(w.slot->sinks.size());
  w.report.sinks_ok = ok;
  w.report.sinks_total = total;
  const auto t = now();
  for (const auto& r : w.sink_results) {
    check(lane, store().record_sink_result(w.seq, r.sink_index, r.outcome, r.message, t, r.tries),
          "sink result");
  }
  w.sink_results.clear();
  if (ok == total) {
    auto before = slot_row(*w.slot);
    const bool was_degraded = before && before->degraded;
    auto c = store().commit_attempt(w.seq, t, w.slot->user->policy.grace);
    if (!c) {
      check(lane, c.error(), "commit");
      w.mark(SlotResult::error, FailureKind::state, c.error().message);
      return;
    }
    if (was_degraded) {
      audit(w.slot, w.seq, "recovered", fmt::format("every sink holds {} now", w.name));
    }
    if (is_self(lane)) {
      self_committed(lane, w, before ? before->current_uuid : std::nullopt);
    }
    w.report.result = SlotResult::committed;
    w.report.failure = FailureKind::none;
    w.report.message.clear();
    w.report.previous_retires = c->retire_at;
  } else if (stopping()) {
    // Cut short: the attempt stays verified or delivering, and the next pass resumes its
    // delivery without minting again.
    w.report.result = SlotResult::delivering;
    w.report.failure = FailureKind::stopped;
  } else if (ok == 0 && !w.resumed) {
    fail(lane, w,
         w.report.failure == FailureKind::none ? FailureKind::sink_retryable : w.report.failure,
         fmt::format("no sink took the new token: {}", w.report.message));
  } else {
    // Roll forward: a sink holds the new token (or, resumed, may), so it must not be
    // revoked.
    check(lane,
          store().set_degraded(*w.slot->id, true,
                               fmt::format("{} of {} sinks hold {}", ok, total, w.name), t),
          "degraded");
    w.report.result = SlotResult::delivering;
  }
}

// Delivers the tokens of a batch, many slots at once, then settles every slot in one
// transaction (DESIGN §2.2 Batching: one per batch step, not per slot).
asio::awaitable<void>
Pass::deliver_and_commit(Lane& lane, const std::vector<Work*>& works)
{
  std::vector<int> ok(works.size(), 0);
  co_await for_each_concurrently(
    works.size(), k_deliveries_in_flight,
    [&](std::size_t i) -> asio::awaitable<void> { ok[i] = co_await deliver(*works[i]); });
  util::crash_point("before_commit");
  {
    auto tx = begin(lane, "deliveries");
    for (std::size_t i = 0; i < works.size(); ++i) {
      settle(lane, *works[i], ok[i]);
    }
    if (!commit(lane, tx, "deliveries")) {
      for (auto* w : works) {
        w->mark(SlotResult::error, FailureKind::state, "the batch's deliveries were not committed");
      }
      co_return;
    }
  }
  util::crash_point("after_commit");
  for (auto* w : works) {
    if (w->report.result == SlotResult::committed) {
      util::log::info("{}: committed {} to {} sink{}", w->slot->slot_name, w->name,
                      w->report.sinks_total, w->report.sinks_total == 1 ? "" : "s");
    }
  }
}

} // namespace rotation::detail
