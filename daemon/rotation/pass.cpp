#include "rotation/pass.hpp"

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

} // namespace rotation
