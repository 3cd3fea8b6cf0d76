// auth: self (docs/self-rotation.md) in the engine: REST as each user against FakeJenkins,
// real files, a hand-driven clock. No script call is ever made for a self controller.
#include "rotation/engine_rig.hpp"
#include "support/text.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/stat.h>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace std::chrono_literals;
using rotation::FailureKind;
using rotation::RequestOp;
using rotation::SlotResult;
using rotation_test::bootstrap_value;
using rotation_test::find;
using rotation_test::Rig;

namespace {

using test::any_contains;
using test::joined;

// Every file under `dir` (state database, WAL, key, sinks) searched for `secret`.
bool
found_anywhere(const std::string& dir, const std::string& secret)
{
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) {
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    if (e.path().filename().string().starts_with("bootstrap-")) {
      continue; // the operator's bootstrap file holds its token by design
    }
    if (content.find(secret) != std::string::npos) {
      return true;
    }
  }
  return false;
}

} // namespace

TEST_SUITE("rotation auth: self")
{
  TEST_CASE("the first rotation logs in with the bootstrap token, mints over REST, runs no script")
  {
    Rig rig({ .users = { "svc-a", "svc-b" }, .self_controllers = { "ci" } });
    const auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    for (const auto& user : { "svc-a", "svc-b" }) {
      const auto* s = find(r, std::string("ci/") + user);
      REQUIRE(s != nullptr);
      CHECK(s->result == SlotResult::committed);
      CHECK(std::filesystem::exists(rig.sink_path(user)));
      const auto row = rig.slot(user);
      REQUIRE(row);
      REQUIRE(row->current_uuid);
      CHECK(rig.jenkins.has_uuid(*row->current_uuid));
      // The bootstrap token lives on through grace beside the new one.
      CHECK(rig.jenkins.tokens(user).size() == 2);
    }
    CHECK(rig.jenkins.scripts["ci"] == 0);
    CHECK(rig.jenkins.count(RequestOp::list) == 0);
    CHECK(any_contains(rig.audit_events(), "bootstrap_done"));
    // No plain token at rest: neither the bootstrap nor the minted ones.
    for (const auto& user : { "svc-a", "svc-b" }) {
      CHECK_FALSE(found_anywhere(rig.dir(), bootstrap_value(user)));
      for (const auto& t : rig.jenkins.tokens(user)) {
        CHECK_FALSE(found_anywhere(rig.dir(), t.secret));
      }
    }
    // The state key was made on first use, 0600.
    struct stat st
    {};
    REQUIRE(::stat((rig.dir() + "/state/state_key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }

  TEST_CASE("after grace the bootstrap token is swept; the next rotation logs in as the current")
  {
    Rig rig({ .users = { "svc-a" }, .self_controllers = { "ci" } });
    REQUIRE(rig.pass().ok());
    const auto first = *rig.slot("svc-a")->current_uuid;
    rig.clock.advance(1h + 1s);
    auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    REQUIRE(rig.jenkins.tokens("svc-a").size() == 1);
    CHECK(rig.jenkins.tokens("svc-a")[0].uuid == first);
    CHECK(any_contains(rig.audit_events(), "self_sweep"));
    // A week on: rotated with the kept token (the bootstrap one is gone).
    rig.clock.advance(7 * 24h);
    r = rig.pass();
    INFO(joined(r.errors));
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::committed);
    const auto second = *rig.slot("svc-a")->current_uuid;
    CHECK(second != first);
    CHECK(rig.jenkins.tokens("svc-a").size() == 2);
    // The previous one retires after grace, revoked by uuid over REST.
    rig.clock.advance(1h + 1s);
    CHECK(rig.pass().ok());
    REQUIRE(rig.jenkins.tokens("svc-a").size() == 1);
    CHECK(rig.jenkins.tokens("svc-a")[0].uuid == second);
    CHECK(rig.jenkins.scripts["ci"] == 0);
  }

  TEST_CASE("a lost REST mint that was made is proven by its value, abandoned and swept")
  {
    Rig rig({ .users = { "svc-a" }, .self_controllers = { "ci" } });
    rig.jenkins.lose_rest_mints = 1;
    auto r = rig.pass();
    INFO(joined(r.errors));
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::committed);
    CHECK(rig.jenkins.minted() == 2);
    const auto attempts = rig.attempts("svc-a");
    REQUIRE(attempts.size() == 2);
    CHECK(attempts[1].state == state::AttemptState::abandoned);
    CHECK(attempts[0].state == state::AttemptState::committed);
    CHECK(any_contains(rig.audit_events(), "lost mint made"));
    // bootstrap + lost + current, until the sweep after the bootstrap's grace.
    CHECK(rig.jenkins.tokens("svc-a").size() == 3);
    rig.clock.advance(1h + 1s);
    r = rig.pass();
    CHECK(r.ok());
    REQUIRE(rig.jenkins.tokens("svc-a").size() == 1);
    CHECK(rig.jenkins.tokens("svc-a")[0].uuid == *rig.slot("svc-a")->current_uuid);
  }

  TEST_CASE("a lost REST mint that never ran: Jenkins refuses its value; minted anew")
  {
    Rig rig({ .users = { "svc-a" }, .self_controllers = { "ci" } });
    rig.jenkins.lose_rest_unmade = 1;
    const auto r = rig.pass();
    CHECK(r.ok());
    CHECK(rig.jenkins.minted() == 1);
    CHECK(any_contains(rig.audit_events(), "lost mint: not made"));
  }

  TEST_CASE("a lost mint on a later rotation is swept once the previous token retired")
  {
    Rig rig({ .users = { "svc-a" }, .self_controllers = { "ci" } });
    REQUIRE(rig.pass().ok());
    rig.clock.advance(1h + 1s);
    REQUIRE(rig.pass().ok()); // the bootstrap token swept
    REQUIRE(rig.jenkins.tokens("svc-a").size() == 1);
    rig.jenkins.lose_rest_mints = 1;
    rig.clock.advance(7 * 24h);
    auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    // previous (in grace), the lost one, the current: the sweep waits for the grace.
    CHECK(rig.jenkins.tokens("svc-a").size() == 3);
    rig.clock.advance(1h + 1s);
    CHECK(rig.pass().ok());
    REQUIRE(rig.jenkins.tokens("svc-a").size() == 1);
    CHECK(rig.jenkins.tokens("svc-a")[0].uuid == *rig.slot("svc-a")->current_uuid);
  }

  TEST_CASE("Jenkins before 2.260 is refused at the probe, naming the controller and why")
  {
    Rig rig({ .users = { "svc-a" }, .self_controllers = { "ci" } });
    rig.jenkins.rest_version = "2.250";
    const auto r = rig.pass();
    CHECK_FALSE(r.ok());
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::error);
    CHECK(a->message.find("controller ci: auth: self needs Jenkins 2.260 or later") !=
          std::string::npos);
    CHECK(rig.jenkins.minted() == 0);
  }

  TEST_CASE("without a kept token or a bootstrap file the slot says what to give")
  {
    Rig rig({ .users = { "svc-a" }, .self_controllers = { "ci" } });
    std::filesystem::remove(rig.dir() + "/bootstrap-svc-a");
    const auto r = rig.pass();
    CHECK_FALSE(r.ok());
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->message.find("bootstrap_token_file") != std::string::npos);
  }

  TEST_CASE("mixed: an admin controller scripts, the self one beside it does not")
  {
    Rig rig({ .users = { "svc-a", "lean/svc-b" },
              .controllers = { "ci", "lean" },
              .self_controllers = { "lean" } });
    const auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    CHECK(find(r, "lean/svc-b")->result == SlotResult::committed);
    CHECK(rig.jenkins.scripts["ci"] > 0);
    CHECK(rig.jenkins.scripts["lean"] == 0);
  }
}
