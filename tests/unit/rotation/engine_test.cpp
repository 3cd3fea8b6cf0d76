// The engine's state machine (DESIGN §2.2) in-process: FakeJenkins, real files, a
// hand-driven clock.
#include "config/config.hpp"
#include "rotation/engine_rig.hpp"
#include "rotation/token_name.hpp"
#include "schedule/schedule.hpp"
#include "schedule/zone.hpp"
#include "service/pass_queue.hpp"
#include "support/text.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <thread>

// RigOptions are written with designated initializers; the rest keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace std::chrono_literals;
using rotation::FailureKind;
using rotation::PassKind;
using rotation::RequestOp;
using rotation::RevokeReason;
using rotation::SlotResult;
using rotation_test::find;
using rotation_test::Rig;
using rotation_test::RigOptions;

namespace {

using test::any_contains;
using test::joined;

// The name our key gives seq `seq` of ci/`user`: what this database's engine would mint.
std::string
genuine_name(Rig& rig, const std::string& user, state::Seq seq)
{
  return rotation::make_token_name("rotator-", rig.store().instance_id(), rig.store().name_key(),
                                   "ci", config::fold_user_id(user), seq)
    .value();
}

state::AttemptState
newest_state(Rig& rig, const std::string& user)
{
  const auto a = rig.attempts(user);
  REQUIRE_FALSE(a.empty());
  return a.front().state;
}

} // namespace

TEST_SUITE("rotation::Engine")
{
  TEST_CASE("a new slot goes planned, minted, verified, delivering, committed in one pass")
  {
    Rig rig;
    const auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    REQUIRE(r.slots.size() == 2);
    for (const auto& user : { "svc-a", "svc-b" }) {
      const auto* s = find(r, std::string("ci/") + user);
      REQUIRE(s != nullptr);
      CHECK(s->result == SlotResult::committed);
      CHECK(s->failure == FailureKind::none);
      CHECK(s->sinks_ok == 1);
      CHECK(std::filesystem::exists(rig.sink_path(user)));
      const auto row = rig.slot(user);
      REQUIRE(row);
      REQUIRE(row->current_uuid);
      CHECK(rig.jenkins.has_uuid(*row->current_uuid));
      CHECK(rig.jenkins.tokens(user).size() == 1);
      CHECK(newest_state(rig, user) == state::AttemptState::committed);
    }
    // Both users in one mint script (batch_size 50), one verify each.
    CHECK(rig.jenkins.count(RequestOp::mint) == 1);
    CHECK(rig.jenkins.count(RequestOp::verify) == 2);
    CHECK(rig.observer.slots.size() == 2);
    CHECK(rig.observer.sinks.size() == 2);
    CHECK(rig.observer.passes == 1);
    CHECK(rig.observer.requests.size() == rig.jenkins.calls.size());
  }

  TEST_CASE("nothing is due until the schedule says so; the previous token retires after grace")
  {
    Rig rig;
    REQUIRE(rig.pass().ok());
    const auto first = *rig.slot("svc-a")->current_uuid;
    rig.clock.advance(24h);
    auto r = rig.pass();
    CHECK(r.ok());
    CHECK(r.slots.empty());
    CHECK(rig.jenkins.count(RequestOp::mint) == 1);
    rig.clock.advance(6 * 24h + 1s);
    r = rig.pass();
    REQUIRE(r.slots.size() == 2);
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::committed);
    REQUIRE(a->old_age);
    CHECK(*a->old_age == 7 * 24h + 1s);
    REQUIRE(a->previous_retires);
    CHECK(*a->previous_retires == rig.clock.now() + 1h);
    // Within grace the previous token lives on beside the new one.
    CHECK(rig.jenkins.has_uuid(first));
    CHECK(rig.jenkins.tokens("svc-a").size() == 2);
    rig.clock.advance(1h + 1s);
    r = rig.pass();
    CHECK(r.ok());
    CHECK_FALSE(rig.jenkins.has_uuid(first));
    CHECK(rig.jenkins.tokens("svc-a").size() == 1);
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-a", RevokeReason::superseded)) == 1);
  }

  TEST_CASE("a lost mint answer: found by name, revoked, abandoned, minted anew")
  {
    Rig rig({ .users = { "svc-a" } });
    rig.jenkins.lose_mint_answers = 1;
    const auto r = rig.pass();
    INFO(joined(r.errors));
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::committed);
    CHECK(r.ok());
    CHECK(rig.jenkins.count(RequestOp::mint) == 2);
    CHECK(rig.jenkins.tokens("svc-a").size() == 1); // the lost one is gone
    const auto attempts = rig.attempts("svc-a");
    REQUIRE(attempts.size() == 2);
    CHECK(attempts[1].state == state::AttemptState::abandoned);
    CHECK(attempts[0].state == state::AttemptState::committed);
    CHECK(any_contains(rig.audit_events(), "lost mint found by name and revoked"));
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-a", RevokeReason::lost_mint)) == 1);
  }

  TEST_CASE("a lost mint that never ran: nothing found, abandoned, minted anew")
  {
    Rig rig({ .users = { "svc-a" } });
    rig.jenkins.lose_mint_unmade = 1;
    const auto r = rig.pass();
    CHECK(r.ok());
    CHECK(rig.jenkins.minted() == 1);
    CHECK(any_contains(rig.audit_events(), "lost mint: nothing found"));
  }

  TEST_CASE("a lost mint whose revoke fails stays open, fails the pass, and is revoked next pass")
  {
    Rig rig({ .users = { "svc-a" } });
    rig.jenkins.lose_mint_answers = 1;
    rig.jenkins.revoke_broken = true;
    auto r = rig.pass();
    CHECK_FALSE(r.ok());
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::error);
    CHECK(a->failure == FailureKind::outcome_unknown);
    CHECK(a->message.find("revoke failed") != std::string::npos);
    CHECK(newest_state(rig, "svc-a") == state::AttemptState::planned); // still open
    CHECK(rig.jenkins.minted() == 1); // no second mint on top of an unsettled one
    const auto lost_name = rig.attempts("svc-a").front().token_name;
    CHECK(rig.jenkins.token_named("svc-a", lost_name));
    auto events = rig.audit_events();
    CHECK(any_contains(events, "lost_mint_revoke_failed"));
    CHECK_FALSE(any_contains(events, "found by name and revoked"));

    rig.jenkins.revoke_broken = false;
    r = rig.pass();
    INFO(joined(r.errors));
    CHECK_FALSE(rig.jenkins.token_named("svc-a", lost_name));
    const auto attempts = rig.attempts("svc-a");
    const auto lost = std::find_if(attempts.begin(), attempts.end(),
                                   [&](const auto& x) { return x.token_name == lost_name; });
    REQUIRE(lost != attempts.end());
    CHECK(lost->state == state::AttemptState::abandoned);
    CHECK(any_contains(rig.audit_events(), "found by name and revoked"));
    // The slot itself rotates in the same pass once the lost mint is settled.
    CHECK(rig.slot("svc-a")->current_uuid);
  }

  TEST_CASE("an unknown user fails for good: backoff 6 h, no churn")
  {
    Rig rig({ .users = { "svc-a", "ghost" } });
    rig.jenkins.remove_user("ghost"); // in the config, not in Jenkins
    auto r = rig.pass();
    const auto* g = find(r, "ci/ghost");
    REQUIRE(g);
    CHECK(g->result == SlotResult::failed);
    CHECK(g->failure == FailureKind::unknown_user);
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    const auto row = rig.slot("ghost");
    REQUIRE(row->backoff_until);
    CHECK(*row->backoff_until == rig.clock.now() + 6h);
    rig.clock.advance(1h);
    r = rig.pass();
    CHECK(find(r, "ci/ghost") == nullptr); // backing off: not attempted
    CHECK(rig.jenkins.count(RequestOp::mint) == 1);
  }

  TEST_CASE("a user outside the realm (whoAmI 500): failed, its token revoked, backoff 6 h")
  {
    Rig rig({ .users = { "svc-a" } });
    rig.jenkins.verify_500.insert("svc-a");
    const auto r = rig.pass();
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::failed);
    CHECK(a->failure == FailureKind::not_in_realm);
    CHECK(rig.jenkins.tokens("svc-a").empty()); // the failed attempt's token is revoked
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-a", RevokeReason::failed_attempt)) ==
          1);
    CHECK(*rig.slot("svc-a")->backoff_until == rig.clock.now() + 6h);
    CHECK_FALSE(std::filesystem::exists(rig.sink_path("svc-a")));
  }

  TEST_CASE("a transient mint failure backs off 5 min, then 10 min")
  {
    Rig rig({ .users = { "svc-a" } });
    rig.jenkins.fail_mint = net::FailureKind::unreachable;
    rig.jenkins.fail_mint_times = 2;
    auto r = rig.pass();
    CHECK(find(r, "ci/svc-a")->result == SlotResult::failed);
    CHECK(find(r, "ci/svc-a")->failure == FailureKind::network);
    CHECK(*rig.slot("svc-a")->backoff_until == rig.clock.now() + 5min);
    rig.clock.advance(4min);
    r = rig.pass();
    CHECK(r.slots.empty());
    rig.clock.advance(1min);
    r = rig.pass();
    REQUIRE(find(r, "ci/svc-a"));
    CHECK(find(r, "ci/svc-a")->result == SlotResult::failed);
    CHECK(*rig.slot("svc-a")->backoff_until == rig.clock.now() + 10min);
    rig.clock.advance(10min);
    r = rig.pass();
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    CHECK_FALSE(rig.slot("svc-a")->backoff_until);
    CHECK(rig.slot("svc-a")->consecutive_failures == 0);
  }

  TEST_CASE("names carry a MAC: minted names parse as ours and verify under the state's key")
  {
    Rig rig({ .users = { "svc-a" } });
    REQUIRE(rig.pass().ok());
    const auto names = rig.jenkins.token_names("svc-a");
    REQUIRE(names.size() == 1);
    const auto parsed = rotation::parse_token_name(names[0], "rotator-");
    REQUIRE(parsed);
    CHECK(parsed->instance == rig.store().instance_id());
    REQUIRE(parsed->mac);
    CHECK(parsed->mac->size() == 16);
    CHECK(names[0] == genuine_name(rig, "svc-a", parsed->seq));
    CHECK(rotation::genuine_token_name(*parsed, rig.store().name_key(), "ci", "svc-a"));
    // The MAC covers controller and user: the same seq is not genuine for another.
    CHECK_FALSE(rotation::genuine_token_name(*parsed, rig.store().name_key(), "ci", "svc-b"));
    CHECK_FALSE(rotation::genuine_token_name(*parsed, rig.store().name_key(), "other", "svc-a"));
    // The key never shows in what the engine writes to its audit log.
    for (const auto& e : rig.audit_events()) {
      CHECK(e.find(rig.store().name_key()) == std::string::npos);
    }
  }

  TEST_CASE("forged names of ours change nothing: every slot rotates, prune runs, the forged "
            "tokens stay (managed)")
  {
    Rig rig;
    REQUIRE(rig.pass().ok());
    rig.clock.advance(8 * 24h);
    REQUIRE(rig.pass().ok()); // the first tokens are previous now, retiring in 1 h
    const auto inst = rig.store().instance_id();
    // What svc-a can do with its own token: names shaped like ours, a high seq.
    const std::vector<std::string> forged{
      fmt::format("rotator-{}-999999", inst),                  // no MAC (the old format)
      fmt::format("rotator-{}-999999-0123456789abcdef", inst), // a made-up MAC
      genuine_name(rig, "svc-b", 999999),                      // a valid MAC, but for another user
    };
    // And a copy of its own current token's name (an attempt mints one token).
    const auto current = rig.attempts("svc-a").front().token_name;
    for (const auto& n : forged) {
      rig.jenkins.plant("svc-a", n, 90 * 24h);
    }
    rig.jenkins.plant("svc-a", current);
    rig.clock.advance(2h);
    rotation::PassRequest force;
    force.force = true;
    const auto r = rig.pass(force);
    INFO(joined(r.errors));
    CHECK(r.ok());
    CHECK_FALSE(any_contains(r.errors, "stale"));
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    CHECK(find(r, "ci/svc-b")->result == SlotResult::committed);
    // The previous tokens past retire_at were pruned: pruning was not stopped.
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-a", RevokeReason::superseded)) == 1);
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-b", RevokeReason::superseded)) == 1);
    // Nothing of svc-a's forgeries was touched, old as they are, nor the copy.
    for (const auto& n : forged) {
      CHECK_MESSAGE(rig.jenkins.token_named("svc-a", n), n);
    }
    const auto names = rig.jenkins.token_names("svc-a");
    CHECK(std::count(names.begin(), names.end(), current) == 2);
    CHECK(std::none_of(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                       [](const auto& x) { return x.second == RevokeReason::orphan; }));
    // Reported: plan --connect names them.
    rotation::PassRequest preview;
    preview.kind = PassKind::preview;
    const auto p = rig.pass(preview);
    for (const auto& n : forged) {
      CHECK_MESSAGE(any_contains(p.preview, "keep \"" + n + "\" (named like ours"),
                    joined(p.preview));
    }
  }

  TEST_CASE("a genuine name no attempt of ours made: the database is stale; that slot stops "
            "rotating, the controller revokes nothing, the other slots rotate")
  {
    Rig rig;
    REQUIRE(rig.pass().ok());
    rig.clock.advance(8 * 24h);
    REQUIRE(rig.pass().ok()); // the first tokens are previous now, retiring in 1 h
    // What a restored backup meets: a token its own key named, minted after the backup.
    const auto planted = genuine_name(rig, "svc-a", 500);
    rig.jenkins.plant("svc-a", planted);
    rig.clock.advance(2h); // past retire_at: only the stale guard keeps the previous tokens
    const auto revokes_before = rig.jenkins.count(RequestOp::revoke);
    rotation::PassRequest force;
    force.force = true;
    const auto r = rig.pass(force);
    CHECK_FALSE(r.ok());
    CHECK(any_contains(r.errors, "stale"));
    CHECK(any_contains(r.errors, planted));
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::error);
    CHECK(a->failure == FailureKind::stale_database);
    const auto* b = find(r, "ci/svc-b");
    REQUIRE(b);
    CHECK(b->result == SlotResult::committed);
    // No revocation on the controller: the previous tokens of both users stay.
    CHECK(rig.jenkins.count(RequestOp::revoke) == revokes_before);
    CHECK(rig.jenkins.tokens("svc-a").size() == 3);   // two of ours + the planted one
    CHECK(rig.jenkins.tokens("svc-b").size() == 3);   // two previous + the new current
    CHECK(rig.jenkins.token_named("svc-a", planted)); // left for the operator
    CHECK(rig.jenkins.minted() == 5);                 // 2 + 2 + svc-b's new one
  }

  TEST_CASE("a genuine name whose seq this database gave another slot is stale, not an orphan")
  {
    // After a restore the seq counter moves on: a seq may go to another slot while a live
    // token of this one has it. The name tells them apart (the MAC covers the user).
    Rig rig;
    REQUIRE(rig.pass().ok());
    const auto b_seq = rig.attempts("svc-b").front().seq;
    const auto planted = genuine_name(rig, "svc-a", b_seq);
    rig.jenkins.plant("svc-a", planted);
    const auto r = rig.pass();
    CHECK(any_contains(r.errors, "stale"));
    CHECK(rig.jenkins.token_named("svc-a", planted));
    CHECK(rig.observer.revoked.empty());
  }

  TEST_CASE("a controller 40 days ahead still rotates: expiry counts on Jenkins' clock")
  {
    // Issue 19 #11: an expiry computed on our clock would be born expired there.
    Rig rig;
    rig.jenkins.skew = 40 * 24h;
    auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    CHECK(find(r, "ci/svc-b")->result == SlotResult::committed);
    REQUIRE(rig.observer.probes.size() == 1);
    CHECK(rig.observer.probes[0].first == "ci");
    CHECK(rig.observer.probes[0].second.clock_skew == 40 * 24h);
    CHECK(rig.observer.probes[0].second.version == "2.560");
    for (const auto& u : { "svc-a", "svc-b" }) {
      const auto tokens = rig.jenkins.tokens(u);
      REQUIRE(tokens.size() == 1);
      REQUIRE(tokens[0].expires_ms);
      // 30 days from Jenkins' now, which is 40 days past ours.
      CHECK(*tokens[0].expires_ms - rig.jenkins.now_ms_for_test() == 30LL * 24 * 3600 * 1000);
    }
    // A week later (both clocks) nothing expired in Jenkins: no rotation at once, and the
    // scheduled one works again.
    rig.clock.advance(8 * 24h);
    r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
  }

  TEST_CASE("a refusal of the new token names a clock skew that may explain it")
  {
    Rig rig({ .users = { "svc-a" } });
    rig.jenkins.skew = -10min;
    rig.jenkins.verify_401 = { "svc-a" };
    auto r = rig.pass();
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::failed);
    CHECK(a->failure == FailureKind::auth);
    CHECK_MESSAGE(a->message.find("Jenkins' clock is 10m behind ours") != std::string::npos,
                  a->message);
    // Without a skew the message does not blame the clock.
    Rig calm({ .users = { "svc-a" } });
    calm.jenkins.verify_401 = { "svc-a" };
    r = calm.pass();
    CHECK(find(r, "ci/svc-a")->message.find("clock") == std::string::npos);
  }

  TEST_CASE("orphans of ours are revoked; other instances' and people's tokens are not (managed)")
  {
    Rig rig({ .users = { "svc-a" } });
    // A failed attempt recorded no uuid: a token under its name is a lost mint of ours.
    rig.jenkins.fail_mint = net::FailureKind::unreachable;
    rig.jenkins.fail_mint_times = 1;
    REQUIRE(find(rig.pass(), "ci/svc-a")->result == SlotResult::failed);
    const auto orphan = rig.attempts("svc-a").front().token_name;
    REQUIRE(rotation::parse_token_name(orphan, "rotator-"));
    rig.jenkins.plant("svc-a", orphan);
    rig.jenkins.plant("svc-a", "rotator-0badc0de-000001");
    rig.jenkins.plant("svc-a", "laptop", 90 * 24h);
    rig.pass();
    const auto names = rig.jenkins.token_names("svc-a");
    CHECK(std::count(names.begin(), names.end(), orphan) == 0);
    CHECK(std::count(names.begin(), names.end(), "rotator-0badc0de-000001") == 1);
    CHECK(std::count(names.begin(), names.end(), "laptop") == 1);
    CHECK(any_contains(rig.audit_events(), "ours, not in the state"));
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-a", RevokeReason::orphan)) == 1);
  }

  TEST_CASE("prune: all takes the user's foreign tokens older than lifetime, not younger ones")
  {
    Rig rig({ .users = { "svc-a" }, .user_extra = "prune: all" });
    rig.jenkins.plant("svc-a", "laptop-old", 31 * 24h);
    rig.jenkins.plant("svc-a", "laptop-new", 2 * 24h);
    const auto r = rig.pass();
    CHECK(r.ok());
    const auto names = rig.jenkins.token_names("svc-a");
    CHECK(std::count(names.begin(), names.end(), "laptop-old") == 0);
    CHECK(std::count(names.begin(), names.end(), "laptop-new") == 1);
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-a", RevokeReason::foreign_pruned)) ==
          1);
  }

  TEST_CASE("a sink that fails while another holds the token: delivering, then rolls forward")
  {
    Rig rig({ .users = { "svc-a" }, .sinks = 2 });
    rig.break_sink("svc-a", 1, true);
    auto r = rig.pass();
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::delivering);
    CHECK(a->sinks_ok == 1);
    CHECK(rig.slot("svc-a")->degraded);
    CHECK(newest_state(rig, "svc-a") == state::AttemptState::delivering);
    rig.break_sink("svc-a", 1, false);
    r = rig.pass();
    a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::committed);
    CHECK(rig.jenkins.minted() == 1); // resumed, never minted again
    CHECK_FALSE(rig.slot("svc-a")->degraded);
    CHECK(any_contains(rig.audit_events(), "recovered"));
  }

  TEST_CASE("no sink takes the token: failed, and the token is revoked by the prune")
  {
    Rig rig({ .users = { "svc-a" } });
    rig.break_sink("svc-a", 0, true);
    const auto r = rig.pass();
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::failed);
    CHECK(a->failure == FailureKind::sink_rejected);
    CHECK(rig.jenkins.tokens("svc-a").empty());
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-a", RevokeReason::failed_attempt)) ==
          1);
  }

  TEST_CASE("a stop during delivery kills the hook, leaves the attempt open; the next pass resumes")
  {
    Rig rig({ .users = { "svc-a" }, .exec_sink = true });
    const auto marker = rig.dir() + "/out/hook-pid";
    rig.write_hook("#!/bin/sh\necho $$ > " + marker + "\nexec sleep 30\n");
    auto engine = rig.engine();
    const auto started = std::chrono::steady_clock::now();
    auto r = rig.run(*engine, {}, 300ms);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    CHECK(r.stopped);
    CHECK_FALSE(r.ok());
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::delivering);
    CHECK(a->failure == FailureKind::stopped);
    const auto st = newest_state(rig, "svc-a");
    CHECK((st == state::AttemptState::delivering || st == state::AttemptState::verified));
    CHECK(rig.jenkins.tokens("svc-a").size() == 1); // not revoked: resumable
    // A stopped engine stays stopped.
    CHECK(rig.run(*engine, {}).stopped);

    rig.write_hook("#!/bin/sh\ncat > /dev/null\n");
    r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    CHECK(rig.jenkins.minted() == 1);
  }

  TEST_CASE("a stop before a pass starts nothing")
  {
    Rig rig;
    auto engine = rig.engine();
    engine->request_stop();
    const auto r = rig.run(*engine, {});
    CHECK(r.stopped);
    CHECK(rig.jenkins.calls.empty());
  }

  TEST_CASE("resume: a minted attempt's token is revoked and the slot minted anew")
  {
    Rig rig({ .users = { "svc-a" } });
    // A first attempt that failed leaves the slot without a token, backing off.
    rig.jenkins.fail_mint = net::FailureKind::unreachable;
    rig.jenkins.fail_mint_times = 1;
    REQUIRE(find(rig.pass(), "ci/svc-a")->result == SlotResult::failed);
    // A process that died after mint: the attempt is `minted`, its plain token lost.
    const auto uuid = rig.plant_minted_attempt("svc-a");
    const auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK_FALSE(rig.jenkins.has_uuid(uuid));
    CHECK(std::count(rig.observer.revoked.begin(), rig.observer.revoked.end(),
                     std::pair<std::string, RevokeReason>("svc-a", RevokeReason::failed_attempt)) ==
          1);
    // The failed attempt's backoff is lifted: the slot (no token yet) mints at once.
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::committed);
    CHECK(rig.jenkins.minted() == 1);
    CHECK(rig.jenkins.tokens("svc-a").size() == 1);
  }

  TEST_CASE("resume: a planned attempt is a lost mint, looked up by name")
  {
    Rig rig({ .users = { "svc-a" } });
    REQUIRE(rig.pass().ok());
    auto& store = rig.store();
    const auto seq = store.next_seq().value();
    const auto name = fmt::format("rotator-{}-{:06}", store.instance_id(), seq);
    REQUIRE(store.create_attempt(seq, rig.slot("svc-a")->id, name, rig.clock.now()).has_value());
    rig.jenkins.plant("svc-a", name);
    const auto r = rig.pass();
    const auto* a = find(r, "ci/svc-a");
    REQUIRE(a);
    CHECK(a->result == SlotResult::abandoned);
    CHECK_FALSE(rig.jenkins.token_named("svc-a", name));
    CHECK(rig.jenkins.minted() == 1); // not due: no new mint
  }

  TEST_CASE("a current token gone from Jenkins makes its slot due at once")
  {
    Rig rig({ .users = { "svc-a" } });
    REQUIRE(rig.pass().ok());
    rig.jenkins.clear_tokens("svc-a");
    const auto r = rig.pass();
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    CHECK(rig.jenkins.tokens("svc-a").size() == 1);
  }

  TEST_CASE("preview says what reconcile and prune would do and writes nothing")
  {
    Rig rig({ .users = { "svc-a" } });
    rig.jenkins.fail_mint = net::FailureKind::unreachable;
    rig.jenkins.fail_mint_times = 1;
    REQUIRE(find(rig.pass(), "ci/svc-a")->result == SlotResult::failed);
    rig.clock.advance(1h);
    REQUIRE(rig.pass().ok());
    const auto orphan = rig.attempts("svc-a").back().token_name; // the failed attempt's
    rig.jenkins.plant("svc-a", orphan);
    const auto before = rig.audit_events();
    const auto slots_before = rig.store().slots().value().size();
    rotation::PassRequest preview;
    preview.kind = PassKind::preview;
    const auto r = rig.pass(preview);
    CHECK(any_contains(r.preview, "ours, not in the state"));
    CHECK(rig.audit_events() == before);
    CHECK(rig.store().slots().value().size() == slots_before);
    CHECK(rig.jenkins.tokens("svc-a").size() == 2);
    CHECK(rig.jenkins.count(RequestOp::revoke) == 0);
  }

  TEST_CASE("a preview before any pass makes no slot rows")
  {
    Rig rig({ .users = { "svc-a" } });
    rotation::PassRequest preview;
    preview.kind = PassKind::preview;
    const auto r = rig.pass(preview);
    INFO(joined(r.errors));
    CHECK(r.errors.empty());
    CHECK(rig.store().slots().value().empty());
  }

  TEST_CASE("rotate: named slots rotate although not due; unknown names are errors")
  {
    Rig rig;
    REQUIRE(rig.pass().ok());
    rotation::PassRequest req;
    req.kind = PassKind::rotate;
    req.slots = { "ci/svc-b" };
    auto r = rig.pass(req);
    REQUIRE(r.slots.size() == 1);
    CHECK(r.slots[0].slot() == "ci/svc-b");
    CHECK(r.slots[0].result == SlotResult::committed);
    req.slots = { "ci/nobody" };
    r = rig.pass(req);
    CHECK_FALSE(r.ok());
    CHECK(any_contains(r.errors, "unknown slot: ci/nobody"));
    req.slots.clear();
    req.force = true;
    r = rig.pass(req);
    CHECK(r.slots.size() == 2);
  }

  TEST_CASE("a slot the scheduler queued while another pass rotated it is rotated once")
  {
    // The daemon's sequence: a full pass (start-up resume, a reload) runs and rotates the
    // new slots; meanwhile the scheduler, reading the table from before, queues svc-a as
    // due. Its pass then runs after the commit: "if still due" is false, nothing is minted.
    Rig rig;
    service::PassQueue q;
    q.add("ci", service::Ask{ service::Ask::Kind::full, false, {}, std::nullopt });
    auto full = q.start("ci");
    REQUIRE(full);
    q.add("ci",
          service::Ask{ service::Ask::Kind::rotate, false, { "ci/svc-a" }, std::nullopt, true });
    auto r = rig.pass(*full);
    REQUIRE(r.ok());
    CHECK(r.slots.size() == 2);
    q.finish("ci");
    const auto first = *rig.slot("svc-a")->current_uuid;
    auto scheduled = q.start("ci");
    REQUIRE(scheduled);
    CHECK(scheduled->slots.empty());
    r = rig.pass(*scheduled);
    INFO(joined(r.errors));
    CHECK(r.ok());
    CHECK(r.slots.empty());
    CHECK(rig.jenkins.count(RequestOp::mint) == 1);
    CHECK(*rig.slot("svc-a")->current_uuid == first);
    CHECK(rig.jenkins.tokens("svc-a").size() == 1);
    // Once due by the schedule, the same request rotates it; named slots still force.
    rig.clock.advance(7 * 24h + 1s);
    r = rig.pass(*scheduled);
    REQUIRE(r.slots.size() == 1);
    CHECK(r.slots[0].slot() == "ci/svc-a");
    CHECK(r.slots[0].result == SlotResult::committed);
    rotation::PassRequest named;
    named.kind = PassKind::rotate;
    named.slots = { "ci/svc-a" };
    r = rig.pass(named);
    REQUIRE(r.slots.size() == 1);
    CHECK(r.slots[0].result == SlotResult::committed);
    // A name the config lacks (removed by a reload) is skipped, not an error.
    rotation::PassRequest gone;
    gone.kind = PassKind::rotate;
    gone.if_due = { "ci/removed" };
    CHECK(rig.pass(gone).ok());
  }

  TEST_CASE("slot rows: known ones are read in one query, a display name that changed is updated")
  {
    Rig rig;
    REQUIRE(rig.pass().ok());
    const auto id = rig.slot("svc-a")->id;
    // As if an older config had written the user as SVC-A (Jenkins ignores case).
    REQUIRE(rig.store().ensure_slot("ci", "svc-a", "SVC-A").value() == id);
    REQUIRE(rig.slot("svc-a")->user_display == "SVC-A");
    rig.clock.advance(24h);
    const auto r = rig.pass();
    CHECK(r.ok());
    CHECK(r.slots.empty()); // nothing due
    CHECK(rig.slot("svc-a")->id == id);
    CHECK(rig.slot("svc-a")->user_display == "svc-a");
    CHECK(rig.slot("svc-b")->user_display == "svc-b");
  }

  TEST_CASE("one lane per controller: a slow controller does not hold up another")
  {
    Rig rig({ .users = { "ci/svc-a", "slow/svc-b" }, .controllers = { "ci", "slow" } });
    rotation_test::FakeJenkins slow(rig.clock);
    slow.add_user("svc-b");
    slow.probe_delay = 500ms;
    rig.fakes = { { "ci", &rig.jenkins }, { "slow", &slow } };
    const auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    REQUIRE(rig.observer.slots.size() == 2);
    CHECK(rig.observer.slots[0].slot() == "ci/svc-a"); // done while "slow" still probed
    CHECK(rig.observer.slots[1].slot() == "slow/svc-b");
    // And a pass may take one lane only.
    rotation::PassRequest only;
    only.controller = "ci";
    only.force = true;
    const auto r2 = rig.pass(only);
    REQUIRE(r2.slots.size() == 1);
    CHECK(r2.slots[0].slot() == "ci/svc-a");
  }

  TEST_CASE("verifications run verify_concurrent at once; twice max_concurrent batches overlap")
  {
    std::vector<std::string> users;
    for (int i = 0; i < 40; ++i) {
      users.push_back(fmt::format("svc-{:02}", i));
    }
    Rig rig({ .users = users, .batch_size = 5, .max_concurrent = 2, .verify_concurrent = 3 });
    rig.jenkins.mint_delay = 20ms;
    rig.jenkins.verify_delay = 20ms;
    const auto r = rig.pass();
    INFO(joined(r.errors));
    CHECK(r.ok());
    CHECK(rig.jenkins.count(rotation::RequestOp::verify) == 40);
    CHECK(rig.jenkins.count(rotation::RequestOp::mint) == 8);
    // Each batch verifies up to verify_concurrent tokens; the net::Client holds them to
    // verify_concurrent across batches (tests/unit/net).
    CHECK(rig.jenkins.most_verifies_in_flight > 3);
    CHECK(rig.jenkins.most_verifies_in_flight <= 4 * 3);
    CHECK(rig.jenkins.most_mints_in_flight == 4);
  }

  TEST_CASE("a down controller is an error of the pass; the others rotate")
  {
    Rig rig({ .users = { "ci/svc-a", "down/svc-b" }, .controllers = { "ci", "down" } });
    rotation_test::FakeJenkins down(rig.clock);
    down.add_user("svc-b");
    down.fail_probe = net::FailureKind::unreachable;
    rig.fakes = { { "ci", &rig.jenkins }, { "down", &down } };
    const auto r = rig.pass();
    CHECK_FALSE(r.ok());
    CHECK(find(r, "ci/svc-a")->result == SlotResult::committed);
    CHECK(find(r, "down/svc-b")->result == SlotResult::error);
    CHECK(find(r, "down/svc-b")->failure == FailureKind::network);
    CHECK(r.errors.size() == 1);
  }
}

TEST_SUITE("rotation::next_due")
{
  TEST_CASE("new slots are due now; next_due pulls in, backoff pushes out")
  {
    config::User u;
    u.user = "svc-a";
    u.controller = "ci";
    u.policy.schedule = "every 7d";
    u.policy.timezone = "UTC";
    u.policy.parsed_schedule =
      std::make_shared<const schedule::Schedule>(schedule::Schedule::parse("every 7d").value());
    u.policy.zone = schedule::Zone::locate("UTC").value();
    u.policy.jitter = std::chrono::seconds(0);
    const util::Time now(std::chrono::seconds(1767571200));
    CHECK(rotation::next_due(u, std::nullopt, now) == now);
    state::Slot row;
    CHECK(rotation::next_due(u, row, now) == now); // no current token
    row.current_uuid = "u";
    row.last_rotation = now - 24h;
    CHECK(rotation::next_due(u, row, now) == now + 6 * 24h);
    row.next_due = now + 1h;
    CHECK(rotation::next_due(u, row, now) == now + 1h);
    row.backoff_until = now + 2h;
    CHECK(rotation::next_due(u, row, now) == now + 2h);
    row.next_due.reset();
    CHECK(rotation::next_due(u, row, now) == now + 6 * 24h);
  }
}
