#include "crypto/envelope.hpp"
#include "state/store.hpp"
#include "support.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <filesystem>
#include <vector>

using namespace std::chrono_literals;
using state::Envelope;
using state::SinkOutcome;
using state::Store;
using state_test::read_bytes;
using state_test::t0;
using state_test::TempDir;

namespace {

std::string
to_base64(const unsigned char* data, std::size_t size)
{
  std::string out(sodium_base64_encoded_len(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1); // the terminating NUL
  return out;
}

// Every byte of every file in `dir` (database, WAL, shm, lock, copies).
std::string
all_bytes(const std::string& dir)
{
  std::string bytes;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    bytes += read_bytes(entry.path().string());
  }
  return bytes;
}

} // namespace

TEST_SUITE("state::Store secrets")
{
  TEST_CASE("the database files hold the sealed token, never the plain one")
  {
    REQUIRE(sodium_init() >= 0);
    // A fake Jenkins token (34 hex characters, as Jenkins makes them).
    const std::string plain = "11a5f00dfeedfacecafebabe0123456789";
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    unsigned char sk[crypto_box_SECRETKEYBYTES];
    crypto_box_keypair(pk, sk);
    std::vector<unsigned char> sealed(crypto_box_SEALBYTES + plain.size());
    REQUIRE(crypto_box_seal(sealed.data(), reinterpret_cast<const unsigned char*>(plain.data()),
                            plain.size(), pk) == 0);
    const auto ciphertext = to_base64(sealed.data(), sealed.size());

    TempDir dir;
    std::string envelope_text;
    {
      auto store = Store::open(dir.path(), crypto::check_envelope).value();
      const auto slot = store.ensure_slot("ci", "svc-deploy", "svc-deploy").value();
      const auto seq = store.next_seq().value();
      const auto name = fmt::format("rotator-{}-{:06}", store.instance_id(), seq);
      const std::string uuid = "0b8f4c1e-6d2a-4a8e-9c3b-5f7e2d1a9b40";
      REQUIRE_OK(store.create_attempt(seq, slot, name, t0()));
      const nlohmann::json env = {
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
      envelope_text = env.dump();
      const std::vector<Envelope> envs{ Envelope{ 0, "hash-0", envelope_text } };
      REQUIRE_OK(store.mark_minted(seq, { uuid, t0(), t0() + 30 * 24h, std::nullopt }, envs, t0()));
      REQUIRE_OK(store.mark_verified(seq, t0()));
      REQUIRE_OK(store.record_sink_result(seq, 0, SinkOutcome::ok, "", t0()));
      REQUIRE_OK(store.commit_attempt(seq, t0(), 24h));

      // While open, the WAL holds the recent writes.
      const auto live = all_bytes(dir.path());
      CHECK(live.find(ciphertext) != std::string::npos);
      CHECK(live.find(plain) == std::string::npos);

      // What is stored opens to the token: the store kept the sealed form, byte for byte.
      const auto stored = store.envelopes(seq).value().at(0).json;
      CHECK(stored == envelope_text);
      const auto text = nlohmann::json::parse(stored)["sealed"][0]["ciphertext"].get<std::string>();
      std::vector<unsigned char> bin(text.size());
      std::size_t bin_len = 0;
      REQUIRE(sodium_base642bin(bin.data(), bin.size(), text.data(), text.size(), nullptr, &bin_len,
                                nullptr, sodium_base64_VARIANT_ORIGINAL) == 0);
      std::string opened(bin_len - crypto_box_SEALBYTES, '\0');
      REQUIRE(crypto_box_seal_open(reinterpret_cast<unsigned char*>(opened.data()), bin.data(),
                                   bin_len, pk, sk) == 0);
      CHECK(opened == plain);
    }
    // After close (WAL checkpointed into state.db).
    const auto bytes = all_bytes(dir.path());
    CHECK(bytes.find(ciphertext) != std::string::npos);
    CHECK(bytes.find(plain) == std::string::npos);
    const auto plain_b64 =
      to_base64(reinterpret_cast<const unsigned char*>(plain.data()), plain.size());
    CHECK(bytes.find(plain_b64) == std::string::npos);
  }
}
