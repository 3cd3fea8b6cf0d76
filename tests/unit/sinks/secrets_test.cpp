#include "config/expand.hpp"
#include "net/test_server.hpp"
#include "sinks/exec_sink.hpp"
#include "sinks/file_sink.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <filesystem>
#include <vector>

using namespace sinks;
using namespace sinks::test;

namespace {

// What a minted Jenkins token looks like ("11" + 32 hex); it exists only here and,
// sealed, inside the envelope's ciphertext.
constexpr const char* k_token = "11c0ffee5ec4e7deadbeef0123456789ab";
// The http sink's credential, read through ${file:} as the config would.
constexpr const char* k_header_secret = "hv-7f3e9c21a0b4d8e6";

struct Sealed
{
  std::string envelope;
  std::string ciphertext;
  unsigned char secret_key[crypto_box_SECRETKEYBYTES];
};

Sealed
seal_token()
{
  REQUIRE(sodium_init() >= 0);
  Sealed s;
  unsigned char pk[crypto_box_PUBLICKEYBYTES];
  crypto_box_keypair(pk, s.secret_key);
  const std::string token = k_token;
  std::vector<unsigned char> ct(crypto_box_SEALBYTES + token.size());
  REQUIRE(crypto_box_seal(ct.data(), reinterpret_cast<const unsigned char*>(token.data()),
                          token.size(), pk) == 0);
  std::string b64(sodium_base64_ENCODED_LEN(ct.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), ct.data(), ct.size(), sodium_base64_VARIANT_ORIGINAL);
  b64.resize(b64.find('\0'));
  s.ciphertext = b64;
  nlohmann::json j = { { "format", "jenkins-token-rotator/v1" },
                       { "controller", "ci" },
                       { "url", "https://jenkins.example.com/" },
                       { "user", "svc-deploy" },
                       { "token_name", "rotator-5f2a9c1e-000042" },
                       { "token_uuid", "0b5c9a7e-6f1d-4c3e-9a51-2f8e7d6c5b4a" },
                       { "created", "2026-11-27T03:00:12Z" },
                       { "expires", "2026-12-27T03:00:12Z" },
                       { "jenkins_expires", nullptr },
                       { "sealed",
                         { { { "recipient", "deploy" },
                             { "key_id", "1a2b3c4d" },
                             { "alg", "crypto_box_seal" },
                             { "ciphertext", b64 } } } } };
  s.envelope = j.dump();
  return s;
}

std::string
open_sealed(const Sealed& s, const std::string& envelope_json)
{
  const auto j = nlohmann::json::parse(envelope_json);
  const auto b64 = j.at("sealed").at(0).at("ciphertext").get<std::string>();
  std::vector<unsigned char> ct(b64.size());
  std::size_t len = 0;
  REQUIRE(sodium_base642bin(ct.data(), ct.size(), b64.data(), b64.size(), nullptr, &len, nullptr,
                            sodium_base64_VARIANT_ORIGINAL) == 0);
  unsigned char pk[crypto_box_PUBLICKEYBYTES];
  crypto_scalarmult_base(pk, s.secret_key);
  std::string plain(len - crypto_box_SEALBYTES, '\0');
  REQUIRE(crypto_box_seal_open(reinterpret_cast<unsigned char*>(plain.data()), ct.data(), len, pk,
                               s.secret_key) == 0);
  return plain;
}

} // namespace

TEST_SUITE("sinks: secrets")
{
  TEST_CASE("no written file, request head nor log line holds the token or the header secret")
  {
    TempDir d;
    const auto s = seal_token();
    Delivery delivery = sample_delivery(s.envelope);

    config::Sink fc;
    fc.type = config::SinkType::file;
    fc.path = d / "token.json";
    FileSink file(fc);
    // The worst hooks: one keeps a copy and echoes the envelope to stderr, then fails;
    // one echoes it and succeeds. Both echoes must reach the log redacted.
    const auto failing = d / "leaky-fail";
    write_file(failing, "#!/bin/sh\ntee \"$1/hook-copy.json\" >&2\nexit 1\n", 0755);
    const auto passing = d / "leaky-ok";
    write_file(passing, "#!/bin/sh\ncat >&2\n", 0755);
    config::Sink ec;
    ec.type = config::SinkType::exec;
    ec.command = { failing, d.path() };
    ExecSink exec_fail(ec);
    ec.command = { passing };
    ExecSink exec_ok(ec);

    // The http sink: its header file and CA live outside d, which holds only what the
    // sinks wrote and the hooks. The server answers 200, then 500, then 404.
    TempDir inputs;
    write_file(inputs / "http-token", std::string(k_header_secret) + "\n", 0600);
    auto header = config::expand("Bearer ${file:" + (inputs / "http-token") + "}");
    REQUIRE(header.has_value());
    boost::asio::io_context ioc;
    const auto cert = test_net::make_certificate("IP:127.0.0.1");
    test_net::TestServer server(
      ioc,
      [](const test_net::Seen&, int i) {
        return test_net::Reply{ test_net::http_reply(i == 1   ? 200
                                                     : i == 2 ? 500
                                                              : 404,
                                                     "echo: Bearer hv-7f3e9c21a0b4d8e6") };
      },
      &cert);
    config::Sink hc;
    hc.type = config::SinkType::http;
    hc.url = fmt::format("https://127.0.0.1:{}/v1/jenkins/svc-deploy", server.port());
    hc.ca_file = inputs / "ca.pem";
    write_file(hc.ca_file, cert.cert_pem);
    hc.headers = { { "Authorization", util::SecretText(*header) } };
    auto http = make_sink(hc, ioc.get_executor());
    REQUIRE(http.has_value());
    const auto deliver_http = [&] {
      std::optional<Outcome> out;
      boost::asio::co_spawn(ioc, (*http)->deliver(delivery), [&](std::exception_ptr e, Outcome o) {
        if (e) {
          std::rethrow_exception(e);
        }
        out = std::move(o);
        ioc.stop();
      });
      ioc.restart();
      ioc.run();
      REQUIRE(out.has_value());
      return *out;
    };

    LogCapture logs;
    std::vector<Outcome> outcomes;
    outcomes.push_back(run_delivery(file, delivery));
    outcomes.push_back(run_delivery(exec_fail, delivery));
    outcomes.push_back(run_delivery(exec_ok, delivery));
    outcomes.push_back(deliver_http());
    outcomes.push_back(deliver_http());
    outcomes.push_back(deliver_http());
    CHECK(outcomes[0].status == Status::ok);
    CHECK(outcomes[1].status == Status::retryable);
    CHECK(outcomes[2].status == Status::ok);
    CHECK(outcomes[3].status == Status::ok);
    CHECK(outcomes[4].status == Status::retryable);
    CHECK(outcomes[5].status == Status::rejected);

    // The server got the envelope as the body and the secret only as the header.
    REQUIRE(server.seen.size() == 3);
    for (const auto& seen : server.seen) {
      CHECK(seen.body == delivery.envelope_json);
      CHECK(open_sealed(s, seen.body) == k_token);
      CHECK(seen.headers.at("authorization") == std::string("Bearer ") + k_header_secret);
      CHECK(seen.head.find(k_token) == std::string::npos);
      const auto line = std::string("Authorization: Bearer ") + k_header_secret + "\r\n";
      const auto at = seen.head.find(line);
      REQUIRE(at != std::string::npos);
      auto rest = seen.head;
      rest.erase(at, line.size());
      CHECK(rest.find(k_header_secret) == std::string::npos);
    }

    // The envelopes written really carry the token, sealed: the search below has
    // something to miss.
    CHECK(open_sealed(s, read_file(d / "token.json")) == k_token);
    CHECK(open_sealed(s, read_file(d / "hook-copy.json")) == k_token);

    int files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(d.path())) {
      if (!e.is_regular_file()) {
        continue;
      }
      ++files;
      const auto content = read_file(e.path().string());
      INFO("file: " << e.path().string());
      CHECK(content.find(k_token) == std::string::npos);
    }
    CHECK(files == 4); // token.json, hook-copy.json and the two hooks
    CHECK(read_file(d / "token.json").find(s.ciphertext) != std::string::npos);

    const auto log_text = logs.joined();
    CHECK(logs.lines().size() == 2);
    CHECK(log_text.find(k_token) == std::string::npos);
    CHECK(log_text.find(k_header_secret) == std::string::npos);
    CHECK(log_text.find(s.ciphertext) == std::string::npos);
    CHECK(log_text.find("base64 characters redacted") != std::string::npos);
    // The rest of the echoed envelope is still there to debug a hook with.
    CHECK(log_text.find("rotator-5f2a9c1e-000042") != std::string::npos);
    for (const auto& o : outcomes) {
      INFO(o.message);
      CHECK(o.message.find(k_header_secret) == std::string::npos);
      CHECK(o.message.find(k_token) == std::string::npos);
      CHECK(o.message.find(s.ciphertext) == std::string::npos);
    }
  }
}
