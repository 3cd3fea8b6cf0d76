#include "crypto/envelope.hpp"
#include "state/store.hpp"
#include "support.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <vector>

using namespace std::chrono_literals;
using state::AttemptState;
using state::Envelope;
using state::MintedToken;
using state::PruneReason;
using state::Seq;
using state::SinkOutcome;
using state::SlotId;
using state::Store;
using state::TokenRole;
using state_test::RawDb;
using state_test::t0;
using state_test::TempDir;

namespace {

std::string
envelope_json(const std::string& name, const std::string& uuid, const std::string& ciphertext)
{
  nlohmann::json env = {
    { "format", "jenkins-token-rotator/v1" },
    { "controller", "ci" },
    { "url", "https://jenkins.example.com/" },
    { "user", "svc-deploy" },
    { "token_name", name },
    { "token_uuid", uuid },
    { "created", "2026-11-27T03:00:00Z" },
    { "expires", "2026-12-27T03:00:00Z" },
    { "jenkins_expires", nullptr },
    { "sealed",
      { { { "recipient", "deploy" },
          { "key_id", "1a2b3c4d" },
          { "alg", "crypto_box_seal" },
          { "ciphertext", ciphertext } } } },
  };
  return env.dump();
}

// A store with one slot, and helpers to drive attempts through their states.
struct Fixture
{
  TempDir dir;
  Store store = Store::open(dir.path(), crypto::check_envelope).value();
  SlotId slot = store.ensure_slot("ci", "svc-deploy", "svc-Deploy").value();

  std::string name_of(Seq seq) const
  {
    return fmt::format("rotator-{}-{:06}", store.instance_id(), seq);
  }

  Seq plan(state::Time now, SlotId on = 0)
  {
    const auto seq = store.next_seq().value();
    REQUIRE_OK(store.create_attempt(seq, on != 0 ? on : slot, name_of(seq), now));
    return seq;
  }

  MintedToken minted(Seq seq, state::Time now) const
  {
    return MintedToken{ fmt::format("uuid-{}", seq), now, now + 30 * 24h, now + 31 * 24h };
  }

  std::vector<Envelope> envelopes(Seq seq, int sinks) const
  {
    std::vector<Envelope> out;
    for (int i = 0; i < sinks; ++i) {
      out.push_back(Envelope{
        i, fmt::format("hash-{}", i),
        envelope_json(name_of(seq), minted(seq, t0()).uuid, fmt::format("c2VhbGVk{}A==", i)) });
    }
    return out;
  }

  // planned -> minted -> verified, with `sinks` envelopes.
  Seq verified(state::Time now, int sinks = 2, SlotId on = 0)
  {
    const auto seq = plan(now, on);
    const auto envs = envelopes(seq, sinks);
    REQUIRE_OK(store.mark_minted(seq, minted(seq, now), envs, now));
    REQUIRE_OK(store.mark_verified(seq, now));
    return seq;
  }

  // A full rotation up to committed.
  state::CommitOutcome rotate(state::Time now, int sinks = 2)
  {
    const auto seq = verified(now, sinks);
    for (int i = 0; i < sinks; ++i) {
      REQUIRE_OK(store.record_sink_result(seq, i, SinkOutcome::ok, "", now));
    }
    auto outcome = store.commit_attempt(seq, now, 24h);
    REQUIRE_OK(outcome);
    return *outcome;
  }

  AttemptState state_of(Seq seq) { return store.attempt(seq).value().value().state; }
};

} // namespace

TEST_SUITE("state::Store attempts")
{
  TEST_CASE("an attempt goes planned, minted, verified, delivering, committed")
  {
    Fixture f;
    const auto now = t0();
    const auto seq = f.plan(now);
    CHECK(f.state_of(seq) == AttemptState::planned);
    CHECK_FALSE(f.store.attempt(seq).value()->token_uuid.has_value());

    const auto envs = f.envelopes(seq, 2);
    REQUIRE_OK(f.store.mark_minted(seq, f.minted(seq, now), envs, now + 1s));
    auto a = f.store.attempt(seq).value().value();
    CHECK(a.state == AttemptState::minted);
    CHECK(a.token_uuid == fmt::format("uuid-{}", seq));
    CHECK(a.updated == now + 1s);
    const auto stored = f.store.envelopes(seq).value();
    REQUIRE(stored.size() == 2);
    CHECK(stored[1].sink_hash == "hash-1");
    CHECK(stored[1].json == envs[1].json);
    auto tok = f.store.token_by_seq(seq).value().value();
    CHECK(tok.role == TokenRole::pending);
    CHECK(tok.name == f.name_of(seq));
    CHECK(tok.expires == now + 30 * 24h);
    CHECK(tok.jenkins_expires == now + 31 * 24h);
    CHECK(tok.controller == "ci");
    CHECK(tok.user_display == "svc-Deploy");

    // Out of order steps are refused with the attempt's name and state.
    auto early = f.store.commit_attempt(seq, now, 24h);
    REQUIRE_FALSE(early.has_value());
    CHECK(early.error().kind == "state");
    CHECK(early.error().message.find("is minted: cannot commit it") != std::string::npos);

    REQUIRE_OK(f.store.mark_verified(seq, now + 2s));
    CHECK(f.state_of(seq) == AttemptState::verified);

    // A failed delivery alone leaves it verified; the first written sink makes it delivering.
    REQUIRE_OK(f.store.record_sink_result(seq, 1, SinkOutcome::retryable, "503", now + 3s));
    CHECK(f.state_of(seq) == AttemptState::verified);
    REQUIRE_OK(f.store.record_sink_result(seq, 0, SinkOutcome::ok, "", now + 3s));
    CHECK(f.state_of(seq) == AttemptState::delivering);
    auto partial = f.store.commit_attempt(seq, now + 4s, 24h);
    REQUIRE_FALSE(partial.has_value());
    CHECK(partial.error().message.find("1 of 2 sinks written") != std::string::npos);
    // Three tries in the next pass (two retries within it) add up with the first.
    REQUIRE_OK(f.store.record_sink_result(seq, 1, SinkOutcome::ok, "", now + 5s, 3));
    const auto results = f.store.sink_results(seq).value();
    REQUIRE(results.size() == 2);
    CHECK(results[0].tries == 1);
    CHECK(results[1].tries == 4);
    CHECK(results[1].outcome == SinkOutcome::ok);
    auto no_sink = f.store.record_sink_result(seq, 7, SinkOutcome::ok, "", now);
    CHECK(no_sink.error().kind == "not_found");

    const auto first = f.store.commit_attempt(seq, now + 6s, 24h);
    REQUIRE_OK(first);
    CHECK_FALSE(first->previous_uuid.has_value());
    CHECK(f.state_of(seq) == AttemptState::committed);
    auto slot = f.store.slot(f.slot).value();
    CHECK(slot.current_uuid == fmt::format("uuid-{}", seq));
    CHECK(slot.last_rotation == now + 6s);

    // The second rotation demotes the first token to previous, retiring after grace.
    const auto later = now + 7 * 24h;
    const auto second = f.rotate(later);
    CHECK(second.previous_uuid == fmt::format("uuid-{}", seq));
    CHECK(second.retire_at == later + 24h);
    const auto old = f.store.token(fmt::format("uuid-{}", seq)).value().value();
    CHECK(old.role == TokenRole::previous);
    CHECK(old.retire_at == later + 24h);
    slot = f.store.slot(f.slot).value();
    CHECK(slot.current_uuid != old.uuid);
    CHECK(f.store.live_tokens(f.slot).value().size() == 2);

    // Prune: nothing before retire_at, the previous token at retire_at, never the current.
    CHECK(f.store.tokens_to_prune(later + 24h - 1s).value().empty());
    auto due = f.store.tokens_to_prune(later + 24h).value();
    REQUIRE(due.size() == 1);
    CHECK(due[0].token.uuid == old.uuid);
    CHECK(due[0].reason == PruneReason::retired);
    auto refused = f.store.mark_revoked(*slot.current_uuid, later);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message.find("current token of ci/svc-Deploy") != std::string::npos);
    REQUIRE_OK(f.store.mark_revoked(old.uuid, later + 24h));
    CHECK(f.store.token(old.uuid).value()->role == TokenRole::revoked);
    CHECK(f.store.tokens_to_prune(later + 365 * 24h).value().empty());
    CHECK(f.store.live_tokens(f.slot).value().size() == 1);

    std::vector<std::string> events;
    for (const auto& e : f.store.audit(f.slot, 100).value()) {
      events.push_back(e.event);
    }
    CHECK(events.front() == "revoked");
    for (const char* e : { "planned", "minted", "verified", "sink_retryable", "sink_ok",
                           "delivering", "committed" }) {
      CHECK(std::find(events.begin(), events.end(), e) != events.end());
    }
  }

  TEST_CASE("a failed attempt leaves the current token alone and its own token to prune")
  {
    Fixture f;
    const auto now = t0();
    f.rotate(now);
    const auto current = f.store.slot(f.slot).value().current_uuid;

    const auto seq = f.verified(now + 1h);
    REQUIRE_OK(f.store.record_sink_result(seq, 0, SinkOutcome::rejected, "403", now + 1h));
    REQUIRE_OK(f.store.fail_attempt(seq, "sink 0 rejected the envelope", now + 1h));
    auto a = f.store.attempt(seq).value().value();
    CHECK(a.state == AttemptState::failed);
    CHECK(a.error == "sink 0 rejected the envelope");
    auto slot = f.store.slot(f.slot).value();
    CHECK(slot.current_uuid == current);
    CHECK(slot.consecutive_failures == 1);
    CHECK(slot.last_error == "sink 0 rejected the envelope");

    // The failed mint's token is due at once (no sink holds it), the current one never.
    auto due = f.store.tokens_to_prune(now + 1h).value();
    REQUIRE(due.size() == 1);
    CHECK(due[0].token.seq == seq);
    CHECK(due[0].reason == PruneReason::failed_mint);
    REQUIRE_OK(f.store.mark_revoked(due[0].token.uuid, now + 1h));
    CHECK(f.store.tokens_to_prune(now + 1h).value().empty());

    // A planned attempt fails too (mint refused), counting another failure.
    const auto planned = f.plan(now + 2h);
    REQUIRE_OK(f.store.fail_attempt(planned, "user unknown", now + 2h));
    CHECK(f.store.slot(f.slot).value().consecutive_failures == 2);

    // The next commit clears the failure count.
    f.rotate(now + 3h);
    slot = f.store.slot(f.slot).value();
    CHECK(slot.consecutive_failures == 0);
    CHECK_FALSE(slot.last_error.has_value());
  }

  TEST_CASE("once a sink holds the token the attempt cannot fail: it rolls forward")
  {
    Fixture f;
    const auto now = t0();
    const auto seq = f.verified(now);
    REQUIRE_OK(f.store.record_sink_result(seq, 0, SinkOutcome::ok, "", now));
    REQUIRE_OK(f.store.record_sink_result(seq, 1, SinkOutcome::retryable, "timeout", now));
    auto r = f.store.fail_attempt(seq, "sink 1 down", now);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "state");
    CHECK(r.error().message.find("is delivering: cannot fail it") != std::string::npos);
    CHECK(f.state_of(seq) == AttemptState::delivering);
    // Its token is not a prune candidate while the attempt is open, even past the deadline.
    CHECK(f.store.tokens_to_prune(now + 365 * 24h).value().empty());

    REQUIRE_OK(f.store.set_degraded(f.slot, true, "sink 1: timeout", now));
    REQUIRE(f.store.degraded_slots().value().size() == 1);
    REQUIRE_OK(f.store.record_sink_result(seq, 1, SinkOutcome::ok, "", now + 1h));
    REQUIRE_OK(f.store.commit_attempt(seq, now + 1h, 24h));
    CHECK(f.store.degraded_slots().value().empty());
  }

  TEST_CASE("a lost mint is abandoned from planned only")
  {
    Fixture f;
    const auto now = t0();
    const auto seq = f.plan(now);
    REQUIRE_OK(f.store.abandon_attempt(seq, "lost mint found by name and revoked", now + 1s));
    auto a = f.store.attempt(seq).value().value();
    CHECK(a.state == AttemptState::abandoned);
    CHECK(a.error == "lost mint found by name and revoked");
    CHECK(f.store.open_attempts().value().empty());

    const auto minted = f.verified(now);
    auto r = f.store.abandon_attempt(minted, "nothing found", now);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "state");
  }

  TEST_CASE("open attempts and attempts by state list what a restart must resume")
  {
    Fixture f;
    const auto now = t0();
    const auto other = f.store.ensure_slot("ci", "svc-build", "svc-build").value();
    const auto planned = f.plan(now);
    const auto verified = f.verified(now, 1, other);
    const auto failed = f.plan(now);
    REQUIRE_OK(f.store.fail_attempt(failed, "x", now));

    std::vector<Seq> open;
    for (const auto& a : f.store.open_attempts().value()) {
      open.push_back(a.seq);
    }
    CHECK(open == std::vector<Seq>{ planned, verified });
    const auto in_verified = f.store.attempts_in_state(AttemptState::verified).value();
    REQUIRE(in_verified.size() == 1);
    CHECK(in_verified[0].slot == other);
    CHECK(f.store.attempts_in_state(AttemptState::failed).value().at(0).seq == failed);
    CHECK(f.store.attempts_of_slot(f.slot, 10).value().size() == 2);
  }

  TEST_CASE("a commit supersedes an older open attempt of the slot")
  {
    Fixture f;
    const auto now = t0();
    const auto stuck = f.verified(now);
    REQUIRE_OK(f.store.record_sink_result(stuck, 0, SinkOutcome::ok, "", now));
    const auto planned = f.plan(now);
    f.rotate(now + 1h);

    auto a = f.store.attempt(stuck).value().value();
    CHECK(a.state == AttemptState::abandoned);
    CHECK(a.error->find("superseded by attempt") != std::string::npos);
    // A sink may hold the superseded token: it retires after grace like a previous one.
    auto tok = f.store.token_by_seq(stuck).value().value();
    CHECK(tok.role == TokenRole::previous);
    CHECK(tok.retire_at == now + 1h + 24h);
    // A planned attempt may be a lost mint: it stays open for the engine to look for.
    CHECK(f.state_of(planned) == AttemptState::planned);
  }

  TEST_CASE("seq only grows, also across reopening")
  {
    TempDir dir;
    {
      auto store = Store::open(dir.path()).value();
      CHECK(store.highest_seq().value() == 0);
      CHECK(store.next_seq().value() == 1);
      CHECK(store.next_seq().value() == 2);
      CHECK(store.next_seq().value() == 3);
      const auto slot = store.ensure_slot("ci", "u", "u").value();
      // A seq that was never handed out is refused.
      auto r = store.create_attempt(4, slot, "rotator-x-000004", t0());
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().message.find("seq 4 was not handed out") != std::string::npos);
      REQUIRE_OK(store.create_attempt(3, slot, "rotator-x-000003", t0()));
    }
    auto store = Store::open(dir.path()).value();
    CHECK(store.highest_seq().value() == 3);
    CHECK(store.next_seq().value() == 4);
    CHECK(store.highest_seq().value() == 4);
  }

  TEST_CASE("a batch step commits or rolls back as one transaction")
  {
    Fixture f;
    const auto now = t0();
    {
      auto tx = f.store.begin();
      REQUIRE_OK(tx);
      f.plan(now);
      f.plan(now);
      // A refused call inside the batch undoes only itself.
      CHECK_FALSE(f.store.mark_verified(1, now).has_value());
      auto nested = f.store.begin();
      CHECK(nested.error().kind == "bug");
      // Dropped without commit: rolled back.
    }
    CHECK(f.store.open_attempts().value().empty());
    CHECK(f.store.highest_seq().value() == 0);
    {
      auto tx = f.store.begin();
      REQUIRE_OK(tx);
      f.plan(now);
      f.plan(now);
      REQUIRE_OK(tx->commit());
    }
    CHECK(f.store.open_attempts().value().size() == 2);
    CHECK(f.store.highest_seq().value() == 2);
  }

  TEST_CASE("envelopes that are not sealed DESIGN §6 envelopes are refused")
  {
    Fixture f;
    const auto now = t0();
    const auto seq = f.plan(now);
    const auto token = f.minted(seq, now);
    const auto good = envelope_json(f.name_of(seq), token.uuid, "c2VhbGVk");

    auto with_extra = nlohmann::json::parse(good);
    with_extra["token"] = "11deadbeef";
    auto unsealed = nlohmann::json::parse(good);
    unsealed["sealed"] = nlohmann::json::array();
    auto plain_entry = nlohmann::json::parse(good);
    plain_entry["sealed"][0]["plaintext"] = "11deadbeef";
    const std::vector<std::string> bad{
      "11deadbeef",
      with_extra.dump(),
      unsealed.dump(),
      plain_entry.dump(),
      envelope_json(f.name_of(seq), "another-uuid", "c2VhbGVk"),
    };
    for (const auto& json : bad) {
      const std::vector<Envelope> envs{ Envelope{ 0, "h", json } };
      auto r = f.store.mark_minted(seq, token, envs, now);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == "envelope");
      CHECK(r.error().message.find("11deadbeef") == std::string::npos);
    }
    CHECK(f.store.mark_minted(seq, token, {}, now).error().kind == "envelope");
    CHECK(f.state_of(seq) == AttemptState::planned);
    CHECK(f.store.envelopes(seq).value().empty());
    CHECK_FALSE(f.store.token(token.uuid).value().has_value());
  }

  TEST_CASE("the one envelope validator (crypto's) runs: its rules hold here too")
  {
    Fixture f;
    const auto now = t0();
    const auto seq = f.plan(now);
    const auto token = f.minted(seq, now);
    auto bad_time = nlohmann::json::parse(envelope_json(f.name_of(seq), token.uuid, "c2VhbGVk"));
    bad_time["expires"] = "11deadbeef";
    auto bad_base64 = nlohmann::json::parse(envelope_json(f.name_of(seq), token.uuid, "c2VhbGVk"));
    bad_base64["sealed"][0]["ciphertext"] = "11deadbeef";
    auto bad_alg = nlohmann::json::parse(envelope_json(f.name_of(seq), token.uuid, "c2VhbGVk"));
    bad_alg["sealed"][0]["alg"] = "11deadbeef";
    for (const auto& json : { bad_time, bad_base64, bad_alg }) {
      const std::vector<Envelope> envs{ Envelope{ 0, "h", json.dump() } };
      auto r = f.store.mark_minted(seq, token, envs, now);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == "envelope");
      CHECK(r.error().message.find("11deadbeef") == std::string::npos);
    }
    CHECK(f.state_of(seq) == AttemptState::planned);
  }

  TEST_CASE("a store opened without an envelope check stores no envelope (fail closed)")
  {
    TempDir dir;
    auto store = Store::open(dir.path()).value();
    const auto slot = store.ensure_slot("ci", "u", "u").value();
    const auto seq = store.next_seq().value();
    const auto name = fmt::format("rotator-{}-{:06}", store.instance_id(), seq);
    REQUIRE_OK(store.create_attempt(seq, slot, name, t0()));
    const std::vector<Envelope> envs{ Envelope{ 0, "h", envelope_json(name, "u-1", "c2VhbGVk") } };
    auto r = store.mark_minted(seq, { "u-1", t0(), t0() + 24h, std::nullopt }, envs, t0());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "envelope");
    CHECK(r.error().message.find("without an envelope check") != std::string::npos);
  }

  TEST_CASE("the audit log is append-only and trimmed by age")
  {
    Fixture f;
    // Relative to the real clock: the store wrote its "created" entry at the real time.
    const auto base =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 1h;
    CHECK(f.store.trim_audit(base).value() == 1);
    for (int i = 0; i < 5; ++i) {
      const auto slot = i % 2 == 0 ? std::optional<SlotId>(f.slot) : std::nullopt;
      REQUIRE_OK(f.store.append_audit(base + std::chrono::hours(i), slot, std::nullopt, "note",
                                      fmt::format("entry {}", i)));
    }
    auto slot_entries = f.store.audit(f.slot, 10).value();
    REQUIRE(slot_entries.size() == 3);
    CHECK(slot_entries[0].detail == "entry 4"); // newest first
    CHECK(f.store.audit(std::nullopt, 2).value().size() == 2);

    CHECK(f.store.trim_audit(base + 2h).value() == 2);
    const auto left = f.store.audit(std::nullopt, 10).value();
    REQUIRE(left.size() == 3);
    CHECK(left.back().detail == "entry 2");

    RawDb raw(f.dir.file("state.db"));
    CHECK(raw.exec("UPDATE audit SET detail = 'rewritten'").find("append-only") !=
          std::string::npos);
  }
}
