#include "crypto/envelope.hpp"
#include "state/store.hpp"
#include "support.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <vector>

using namespace std::chrono_literals;
using state::Seq;
using state::Store;
using state_test::t0;
using state_test::TempDir;

namespace {

constexpr int k_batch = 50;

// Brings k_batch slots each to a delivering attempt whose every sink is written.
std::vector<Seq>
prepare_batch(Store& store, int round)
{
  std::vector<Seq> seqs;
  auto tx = store.begin().value();
  for (int i = 0; i < k_batch; ++i) {
    const auto user = fmt::format("svc-{:03}", i);
    const auto slot = store.ensure_slot("ci", user, user).value();
    const auto seq = store.next_seq().value();
    const auto name = fmt::format("rotator-{}-{:06}", store.instance_id(), seq);
    const auto uuid = fmt::format("uuid-{}-{}", round, seq);
    REQUIRE_OK(store.create_attempt(seq, slot, name, t0()));
    const nlohmann::json env = {
      { "format", "jenkins-token-rotator/v1" },
      { "controller", "ci" },
      { "url", "https://jenkins.example.com/" },
      { "user", user },
      { "token_name", name },
      { "token_uuid", uuid },
      { "created", "2026-11-27T03:00:00Z" },
      { "expires", "2026-12-27T03:00:00Z" },
      { "jenkins_expires", nullptr },
      { "sealed",
        { { { "recipient", "deploy" },
            { "key_id", "1a2b3c4d" },
            { "alg", "crypto_box_seal" },
            { "ciphertext", "c2VhbGVk" } } } },
    };
    const std::vector<state::Envelope> envs{ { 0, "h", env.dump() } };
    REQUIRE_OK(store.mark_minted(seq, { uuid, t0(), t0() + 30 * 24h, std::nullopt }, envs, t0()));
    REQUIRE_OK(store.mark_verified(seq, t0()));
    REQUIRE_OK(store.record_sink_result(seq, 0, state::SinkOutcome::ok, "", t0()));
    seqs.push_back(seq);
  }
  REQUIRE_OK(tx.commit());
  return seqs;
}

double
millis_since(std::chrono::steady_clock::time_point start)
{
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
    .count();
}

} // namespace

// Skipped in the unit run (it prints figures, asserts no timing); tests/bench/state-batch
// runs it with --no-skip.
TEST_SUITE("state::Store bench")
{
  TEST_CASE("committing 50 attempts in one transaction versus 50 transactions" * doctest::skip())
  {
    constexpr int k_rounds = 5;
    std::vector<double> batched;
    std::vector<double> separate;
    TempDir dir;
    auto store = Store::open(dir.path(), crypto::check_envelope).value();
    for (int round = 0; round < k_rounds; ++round) {
      {
        const auto seqs = prepare_batch(store, 2 * round);
        const auto start = std::chrono::steady_clock::now();
        auto tx = store.begin().value();
        for (const auto seq : seqs) {
          REQUIRE_OK(store.commit_attempt(seq, t0() + 1h, 24h));
        }
        REQUIRE_OK(tx.commit());
        batched.push_back(millis_since(start));
      }
      {
        const auto seqs = prepare_batch(store, 2 * round + 1);
        const auto start = std::chrono::steady_clock::now();
        for (const auto seq : seqs) {
          auto tx = store.begin().value();
          REQUIRE_OK(store.commit_attempt(seq, t0() + 1h, 24h));
          REQUIRE_OK(tx.commit());
        }
        separate.push_back(millis_since(start));
      }
    }
    CHECK(store.attempts_in_state(state::AttemptState::committed).value().size() ==
          static_cast<std::size_t>(2 * k_rounds * k_batch));
    std::sort(batched.begin(), batched.end());
    std::sort(separate.begin(), separate.end());
    const auto median = [](const std::vector<double>& v) { return v[v.size() / 2]; };
    fmt::print("state batch step, synchronous=FULL, WAL, {} (median of {} rounds):\n", dir.path(),
               k_rounds);
    fmt::print("  one transaction, {} commits:  {:8.2f} ms  ({:.3f} ms per attempt)\n", k_batch,
               median(batched), median(batched) / k_batch);
    fmt::print("  {} transactions, 1 commit each: {:8.2f} ms  ({:.3f} ms per attempt)\n", k_batch,
               median(separate), median(separate) / k_batch);
    fmt::print("  ratio: {:.1f}x\n", median(separate) / median(batched));
  }
}
