// When a slot is due, and how long it backs off after a failure (DESIGN §2.2, §8).
#include "rotation/engine.hpp"
#include "rotation/pass_impl.hpp"
#include "schedule/schedule.hpp"
#include "schedule/zone.hpp"

namespace rotation {

Time
next_due(const config::User& user, const std::optional<state::Slot>& row, Time now)
{
  if (!row) {
    return now;
  }
  Time due = Time::max();
  if (!row->current_uuid) {
    due = now; // no current token
  } else {
    const auto jitter = schedule::Jitter::for_slot(user.slot(), user.policy.jitter);
    // config::load parsed the schedule and zone once (config::Policy).
    if (auto next = schedule::next_run(*user.policy.parsed_schedule, *user.policy.zone, jitter,
                                       row->last_rotation, now)) {
      due = *next;
    }
  }
  if (row->next_due) {
    due = std::min(due, *row->next_due);
  }
  if (row->backoff_until) {
    due = std::max(due, *row->backoff_until);
  }
  return due;
}

namespace detail {

bool
is_permanent(FailureKind kind)
{
  return kind == FailureKind::unknown_user || kind == FailureKind::not_in_realm;
}

std::chrono::seconds
slot_backoff(int failures, FailureKind kind)
{
  using namespace std::chrono_literals;
  constexpr std::chrono::seconds k_max = 6h;
  if (is_permanent(kind)) {
    return k_max;
  }
  std::chrono::seconds d = 5min;
  for (int i = 1; i < failures && d < k_max; ++i) {
    d *= 2;
  }
  return std::min(d, k_max);
}

FailureKind
failure_kind(const net::Failure& f)
{
  switch (f.kind) {
    case net::FailureKind::unreachable:
    case net::FailureKind::tls:
      return FailureKind::network;
    case net::FailureKind::timeout:
      return FailureKind::timeout;
    case net::FailureKind::http_status:
      return f.status == 500 ? FailureKind::not_in_realm : FailureKind::other;
    case net::FailureKind::auth:
    case net::FailureKind::forbidden:
    case net::FailureKind::redirect:
      return FailureKind::auth;
    case net::FailureKind::bad_output:
      return FailureKind::bad_output;
    case net::FailureKind::outcome_unknown:
      return FailureKind::outcome_unknown;
    case net::FailureKind::script_error:
      return FailureKind::script_error;
  }
  return FailureKind::other;
}

FailureKind
failure_kind(const jenkins::ItemError& e)
{
  // The item kinds of the scripts (tokens.hpp): a user Jenkins does not know, or one
  // without an API token property, fails the same way until an operator acts.
  if (e.kind == "unknown_user" || e.kind == "no_token_property") {
    return FailureKind::unknown_user;
  }
  if (e.kind == "exception") {
    return FailureKind::script_error;
  }
  if (e.kind == "missing") {
    return FailureKind::bad_output;
  }
  if (e.kind == "auth") {
    return FailureKind::auth; // auth: self: the user's own token is refused
  }
  return FailureKind::other;
}

bool
sinks_changed(state::Store& store, const SlotEntry& s, const state::Slot& row)
{
  if (!row.current_uuid) {
    return false;
  }
  auto token = store.token(*row.current_uuid);
  if (!token || !*token) {
    return false;
  }
  auto envelopes = store.envelopes((*token)->seq);
  if (!envelopes) {
    return false;
  }
  if (envelopes->size() != s.sinks.size()) {
    return true;
  }
  for (const auto& e : *envelopes) {
    if (e.sink_index < 0 || static_cast<std::size_t>(e.sink_index) >= s.sinks.size() ||
        s.sinks[static_cast<std::size_t>(e.sink_index)].hash != e.sink_hash) {
      return true;
    }
  }
  return false;
}

} // namespace detail

} // namespace rotation
