#include "rotation/pass.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>

namespace {

rotation::SlotReport
report(std::string user, rotation::SlotResult result)
{
  rotation::SlotReport out;
  out.controller = "ci";
  out.user = std::move(user);
  out.result = result;
  return out;
}

} // namespace

TEST_SUITE("rotation::PassResult")
{
  TEST_CASE("a pass is ok only without errors and with every slot committed or not due")
  {
    rotation::PassResult result;
    CHECK(result.ok());
    result.slots.push_back(report("a", rotation::SlotResult::committed));
    result.slots.push_back(report("b", rotation::SlotResult::not_due));
    CHECK(result.ok());
    result.slots.push_back(report("c", rotation::SlotResult::delivering));
    CHECK_FALSE(result.ok());
    result.slots.pop_back();
    result.errors.emplace_back("ci: connection refused");
    CHECK_FALSE(result.ok());
  }

  TEST_CASE("outcomes have stable words for people and metrics")
  {
    CHECK(rotation::to_string(rotation::SlotResult::not_due) == "not due");
    CHECK(rotation::to_string(rotation::FailureKind::outcome_unknown) == "outcome_unknown");
    CHECK(rotation::to_string(rotation::RevokeReason::lost_mint) == "lost_mint");
    CHECK(rotation::to_string(rotation::RequestOp::verify) == "verify");
    CHECK(report("svc-a", rotation::SlotResult::failed).slot() == "ci/svc-a");
  }
}
