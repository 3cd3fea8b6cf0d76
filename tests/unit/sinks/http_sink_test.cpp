#include "net/test_server.hpp"
#include "sinks/http_sink.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

using namespace sinks;
using namespace std::chrono_literals;
using test_net::Certificate;
using test_net::http_reply;
using test_net::Reply;
using test_net::Seen;
using test_net::TestServer;

namespace {

constexpr const char* k_uuid = "0b5c9a7e-6f1d-4c3e-9a51-2f8e7d6c5b4a";

// An https sink pointed at `server`, trusting `ca` through ca_file.
config::Sink
https_config(const sinks::test::TempDir& dir, const TestServer& server, const Certificate& ca,
             const std::string& host = "127.0.0.1")
{
  config::Sink c;
  c.type = config::SinkType::http;
  c.recipients = { "deploy" };
  c.url = fmt::format("https://{}:{}/v1/jenkins/svc-deploy?env=prod", host, server.port());
  c.ca_file = dir / "ca.pem";
  sinks::test::write_file(c.ca_file, ca.cert_pem);
  c.timeout = std::chrono::seconds(2);
  return c;
}

std::unique_ptr<Sink>
make(boost::asio::io_context& ioc, const config::Sink& c)
{
  auto s = make_sink(c, ioc.get_executor());
  REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
  return std::move(*s);
}

// Runs one delivery on `ioc`, which also serves the test server.
Outcome
deliver(boost::asio::io_context& ioc, Sink& sink, const Delivery& d)
{
  std::optional<Outcome> out;
  boost::asio::co_spawn(ioc, sink.deliver(d), [&](std::exception_ptr e, Outcome o) {
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
}

Delivery
delivery()
{
  auto d = sinks::test::sample_delivery(R"({"format":"jenkins-token-rotator/v1","sealed":[]})");
  d.token_uuid = k_uuid;
  return d;
}

} // namespace

TEST_SUITE("sinks::HttpSink")
{
  TEST_CASE("a 2xx is ok; the server gets the envelope, the Idempotency-Key and the headers")
  {
    sinks::test::TempDir dir;
    boost::asio::io_context ioc;
    const auto cert = test_net::make_certificate("IP:127.0.0.1");
    TestServer server(
      ioc, [](const Seen&, int i) { return Reply{ http_reply(i == 1 ? 201 : 204, "") }; }, &cert);
    auto c = https_config(dir, server, cert);
    c.headers = { { "Authorization", "Bearer header-secret-1" }, { "X-Tenant", "ops" } };
    auto sink = make(ioc, c);
    CHECK(sink->describe() == "http " + c.url);

    const auto d = delivery();
    const auto first = deliver(ioc, *sink, d);
    CHECK(first.status == Status::ok);
    CHECK(first.message == fmt::format("http sink {}: HTTP 201", c.url));

    REQUIRE(server.seen.size() == 1);
    const auto& s = server.seen[0];
    CHECK(s.method == "PUT");
    CHECK(s.target == "/v1/jenkins/svc-deploy?env=prod");
    CHECK(s.body == d.envelope_json);
    CHECK(s.headers.at("idempotency-key") == k_uuid);
    CHECK(s.headers.at("content-type") == "application/json");
    CHECK(s.headers.at("content-length") == std::to_string(d.envelope_json.size()));
    CHECK(s.headers.at("authorization") == "Bearer header-secret-1");
    CHECK(s.headers.at("x-tenant") == "ops");
    CHECK(s.headers.at("host") == fmt::format("127.0.0.1:{}", server.port()));

    // POST, and the second delivery reuses the kept-alive connection.
    c.method = "POST";
    auto post = make(ioc, c);
    CHECK(deliver(ioc, *post, d).status == Status::ok);
    REQUIRE(server.seen.size() == 2);
    CHECK(server.seen[1].method == "POST");
    CHECK(deliver(ioc, *sink, d).status == Status::ok);
    CHECK(server.seen.size() == 3);
    CHECK(server.connections == 2); // one per sink
  }

  TEST_CASE("5xx, 408 and 429 are retryable; 400, 404 and other 4xx are rejected; one try each")
  {
    sinks::test::TempDir dir;
    boost::asio::io_context ioc;
    const auto cert = test_net::make_certificate("IP:127.0.0.1");
    int status = 0;
    TestServer server(
      ioc, [&](const Seen&, int) { return Reply{ http_reply(status, "no such secret") }; }, &cert);
    auto c = https_config(dir, server, cert);
    c.headers = { { "Authorization", "Bearer header-secret-2" } };
    auto sink = make(ioc, c);
    const std::pair<int, Status> cases[] = {
      { 500, Status::retryable }, { 502, Status::retryable }, { 503, Status::retryable },
      { 408, Status::retryable }, { 429, Status::retryable }, { 400, Status::rejected },
      { 401, Status::rejected },  { 403, Status::rejected },  { 404, Status::rejected },
      { 409, Status::rejected },
    };
    int requests = 0;
    for (const auto& [code, expected] : cases) {
      status = code;
      const auto o = deliver(ioc, *sink, delivery());
      INFO(code << ": " << o.message);
      CHECK(o.status == expected);
      CHECK(o.message.find(fmt::format("answered HTTP {}", code)) != std::string::npos);
      CHECK(o.message.find("/v1/jenkins/svc-deploy") != std::string::npos);
      CHECK(o.message.find("header-secret-2") == std::string::npos);
      CHECK(o.message.find("no such secret") == std::string::npos); // the answer's body
      CHECK(server.requests == ++requests);
    }
  }

  TEST_CASE("a redirect is rejected and names the Location, which is not followed")
  {
    sinks::test::TempDir dir;
    boost::asio::io_context ioc;
    const auto cert = test_net::make_certificate("IP:127.0.0.1");
    TestServer server(
      ioc,
      [](const Seen&, int) {
        return Reply{ http_reply(302, "", "Location: https://sso.example.com/login\r\n") };
      },
      &cert);
    auto sink = make(ioc, https_config(dir, server, cert));
    const auto o = deliver(ioc, *sink, delivery());
    CHECK(o.status == Status::rejected);
    CHECK(o.message.find("redirects (302) to https://sso.example.com/login") != std::string::npos);
    CHECK(server.requests == 1);
  }

  TEST_CASE("a server that never answers is retryable after the timeout")
  {
    sinks::test::TempDir dir;
    boost::asio::io_context ioc;
    const auto cert = test_net::make_certificate("IP:127.0.0.1");
    TestServer server(
      ioc,
      [](const Seen&, int) {
        return Reply{ http_reply(200, ""), false, false, 5s };
      },
      &cert);
    auto c = https_config(dir, server, cert);
    c.timeout = std::chrono::seconds(1);
    auto sink = make(ioc, c);
    const auto start = std::chrono::steady_clock::now();
    const auto o = deliver(ioc, *sink, delivery());
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(o.status == Status::retryable);
    CHECK(o.message.find("no answer from") != std::string::npos);
    CHECK(o.message.find("within 1000 ms") != std::string::npos);
    CHECK(took >= 900ms);
    CHECK(took < 3s);
    CHECK(server.requests == 1);
  }

  TEST_CASE("a refused connection is retryable")
  {
    boost::asio::io_context ioc;
    unsigned short port = 0;
    {
      boost::asio::ip::tcp::acceptor a(ioc, { boost::asio::ip::make_address("127.0.0.1"), 0 });
      port = a.local_endpoint().port();
    }
    config::Sink c;
    c.type = config::SinkType::http;
    c.url = fmt::format("http://127.0.0.1:{}/hook", port);
    auto sink = make(ioc, c);
    const auto o = deliver(ioc, *sink, delivery());
    CHECK(o.status == Status::retryable);
    CHECK(o.message.find(fmt::format("cannot connect to 127.0.0.1:{}", port)) != std::string::npos);
  }

  TEST_CASE("TLS fails closed: an untrusted certificate or one for another host is rejected")
  {
    sinks::test::TempDir dir;
    boost::asio::io_context ioc;
    const auto cert = test_net::make_certificate("IP:127.0.0.1");
    const auto other = test_net::make_certificate("IP:127.0.0.1");
    TestServer server(
      ioc, [](const Seen&, int) { return Reply{ http_reply(200, "") }; }, &cert);

    SUBCASE("another CA in ca_file")
    {
      auto sink = make(ioc, https_config(dir, server, other));
      const auto o = deliver(ioc, *sink, delivery());
      CHECK(o.status == Status::rejected);
      CHECK(o.message.find("certificate") != std::string::npos);
      CHECK(o.message.find("ca_file " + (dir / "ca.pem")) != std::string::npos);
    }
    SUBCASE("the system store does not know a self-signed certificate")
    {
      auto c = https_config(dir, server, cert);
      c.ca_file.clear();
      auto sink = make(ioc, c);
      const auto o = deliver(ioc, *sink, delivery());
      CHECK(o.status == Status::rejected);
      CHECK(o.message.find("the system trust store") != std::string::npos);
    }
    SUBCASE("a certificate that does not name the host")
    {
      TestServer misnamed(
        ioc, [](const Seen&, int) { return Reply{ http_reply(200, "") }; }, &cert, "127.0.0.2");
      auto sink = make(ioc, https_config(dir, misnamed, cert, "127.0.0.2"));
      const auto o = deliver(ioc, *sink, delivery());
      CHECK(o.status == Status::rejected);
      CHECK(o.message.find("does not name host 127.0.0.2") != std::string::npos);
      CHECK(misnamed.requests == 0);
    }
    CHECK(server.requests == 0);
  }

  TEST_CASE("a ca_file that cannot be loaded is an error when the sink is made")
  {
    boost::asio::io_context ioc;
    config::Sink c;
    c.type = config::SinkType::http;
    c.url = "https://secrets.internal/v1";
    c.ca_file = "/nonexistent/ca.pem";
    c.mark = config::Mark{ "config.yaml", 7, 12 };
    const auto s = make_sink(c, ioc.get_executor());
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error().message.starts_with("config.yaml:7:12: "));
    CHECK(s.error().message.find("ca_file /nonexistent/ca.pem") != std::string::npos);
  }
}
