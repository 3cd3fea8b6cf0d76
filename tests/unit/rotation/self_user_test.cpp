// auth: self per user (docs/self-rotation.md): on an admin controller, the self users run
// in a lane of their own over REST as themselves; the others keep the script path.
#include "rotation/engine_rig.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

using namespace rotation_test;
using rotation::RequestOp;
using rotation::SlotResult;
using namespace std::chrono_literals;

namespace {

// How many calls of `op` asked about `user`.
int
calls_for(const FakeJenkins& j, RequestOp op, const std::string& user)
{
  return static_cast<int>(std::count_if(j.calls.begin(), j.calls.end(), [&](const FakeCall& c) {
    return c.op == op && std::find(c.users.begin(), c.users.end(), user) != c.users.end();
  }));
}

} // namespace

TEST_SUITE("rotation auth: self per user")
{
  TEST_CASE("a self user and script users of one controller rotate, each its own way")
  {
    RigOptions options;
    options.users = { "svc-a", "svc-b", "svc-c" };
    options.self_users = { "svc-b" };
    Rig rig(options);
    const auto scripts_before = rig.jenkins.scripts["ci"];
    auto r = rig.pass();
    CHECK(r.ok());
    for (const auto* user : { "svc-a", "svc-b", "svc-c" }) {
      const auto* s = find(r, std::string("ci/") + user);
      REQUIRE(s != nullptr);
      CHECK(s->result == SlotResult::committed);
      const auto row = rig.slot(user);
      REQUIRE(row);
      REQUIRE(row->current_uuid);
      CHECK(rig.jenkins.has_uuid(*row->current_uuid));
    }
    CHECK(rig.jenkins.scripts["ci"] > scripts_before);
    // The script users were minted in one batch, listed and never asked over REST; the
    // self user was never in a script: its one mint was REST (a call naming it alone).
    const auto mints =
      std::count_if(rig.jenkins.calls.begin(), rig.jenkins.calls.end(), [](const FakeCall& c) {
        return c.op == RequestOp::mint && c.users.size() == 2;
      });
    CHECK(mints == 1);
    CHECK(calls_for(rig.jenkins, RequestOp::mint, "svc-b") == 1);
    CHECK(calls_for(rig.jenkins, RequestOp::list, "svc-b") == 0);
    CHECK(calls_for(rig.jenkins, RequestOp::list, "svc-a") >= 1);
    // The controller is reported once, reachable.
    CHECK(std::count(rig.observer.controllers_reached.begin(),
                     rig.observer.controllers_reached.end(), "ci") == 1);
    CHECK(rig.store()
            .self_secret(rig.store().token(*rig.slot("svc-b")->current_uuid).value()->seq)
            .value()
            .has_value());

    // After grace the self user's bootstrap token is swept (over REST, as itself).
    rig.clock.advance(1h + 1s);
    rig.jenkins.calls.clear();
    r = rig.pass();
    CHECK(r.ok());
    CHECK(rig.jenkins.tokens("svc-b").size() == 1);
    CHECK(calls_for(rig.jenkins, RequestOp::revoke, "svc-b") == 1);
    // A week on: each rotates again; after grace the old tokens go, the self user's over
    // REST, the script users' by script.
    rig.clock.advance(7 * 24h);
    rig.jenkins.calls.clear();
    r = rig.pass();
    CHECK(r.ok());
    for (const auto* user : { "svc-a", "svc-b", "svc-c" }) {
      REQUIRE(rig.jenkins.tokens(user).size() == 2); // current + previous in its grace
    }
    rig.clock.advance(1h + 1s);
    r = rig.pass();
    CHECK(r.ok());
    for (const auto* user : { "svc-a", "svc-b", "svc-c" }) {
      const auto tokens = rig.jenkins.tokens(user);
      REQUIRE(tokens.size() == 1);
      CHECK(tokens[0].uuid == *rig.slot(user)->current_uuid);
    }
    CHECK(calls_for(rig.jenkins, RequestOp::revoke, "svc-b") >= 1);
    CHECK(calls_for(rig.jenkins, RequestOp::list, "svc-b") == 0);
  }
}
