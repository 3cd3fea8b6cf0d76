#include "net/http_client.hpp"
#include "test_server.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <doctest/doctest.h>

#include <sys/stat.h>

using namespace test_net;
using namespace std::chrono_literals;

namespace {

crypto::SecretBytes
secret(std::string_view text)
{
  return crypto::SecretBytes::copy_of(
           { reinterpret_cast<const unsigned char*>(text.data()), text.size() })
    .value();
}

net::ClientOptions
options_for(const std::string& url)
{
  net::ClientOptions o;
  o.name = "ci";
  o.url = url;
  o.admin_user = "admin";
  o.admin_token = secret("11aaaabbbbccccddddeeeeffff00001111");
  o.allow_http = true;
  o.timeout = 2000ms;
  o.retry = { 3, 5ms, 20ms };
  return o;
}

std::string
http_url(const TestServer& s)
{
  return fmt::format("http://127.0.0.1:{}/", s.port());
}

// Runs `body` as a coroutine on `ioc` until it finishes; rethrows what it threw.
template<typename F>
void
run_client(asio::io_context& ioc, F body)
{
  std::exception_ptr error;
  asio::co_spawn(ioc, body(), [&](std::exception_ptr e) {
    error = e;
    ioc.stop();
  });
  ioc.run();
  if (error) {
    std::rethrow_exception(error);
  }
}

std::unique_ptr<net::Client>
make_client(asio::io_context& ioc, net::ClientOptions o)
{
  auto c = net::Client::create(ioc.get_executor(), std::move(o));
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
  return std::move(*c);
}

net::Request
post_script(bool idempotent)
{
  return net::Request::post_form("scriptText", "script=println+1", idempotent);
}

net::Result<net::Response>
one(asio::io_context& ioc, net::Client& client, net::Request r)
{
  std::optional<net::Result<net::Response>> out;
  run_client(ioc, [&]() -> asio::awaitable<void> { out = co_await client.request(r); });
  REQUIRE(out.has_value());
  return std::move(*out);
}

} // namespace

TEST_SUITE("net::Client")
{
  TEST_CASE("a GET sends preemptive Basic auth and reuses the kept-alive connection")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int i) {
      return Reply{ http_reply(200, fmt::format("answer {}", i)) };
    });
    auto client = make_client(ioc, options_for(http_url(server)));
    std::vector<std::string> bodies;
    run_client(ioc, [&]() -> asio::awaitable<void> {
      for (int i = 0; i < 2; ++i) {
        auto r = co_await client->request(net::Request::get("whoAmI/api/json"));
        REQUIRE(r.has_value());
        bodies.emplace_back(r->text());
      }
    });
    CHECK(bodies == std::vector<std::string>{ "answer 1", "answer 2" });
    CHECK(server.connections == 1);
    REQUIRE(server.seen.size() == 2);
    CHECK(server.seen[0].target == "/whoAmI/api/json");
    const std::string pair = "admin:11aaaabbbbccccddddeeeeffff00001111";
    std::string expected(boost::beast::detail::base64::encoded_size(pair.size()), '\0');
    expected.resize(
      boost::beast::detail::base64::encode(expected.data(), pair.data(), pair.size()));
    CHECK(server.seen[0].headers["authorization"] == "Basic " + expected);
  }

  TEST_CASE("the base URL's path prefixes every target")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) { return Reply{ http_reply(200, "ok") }; });
    auto client =
      make_client(ioc, options_for(fmt::format("http://127.0.0.1:{}/jenkins/", server.port())));
    CHECK(one(ioc, *client, post_script(true)).has_value());
    REQUIRE(server.seen.size() == 1);
    CHECK(server.seen[0].target == "/jenkins/scriptText");
    CHECK(server.seen[0].method == "POST");
    CHECK(server.seen[0].body == "script=println+1");
    CHECK(server.seen[0].headers["content-type"] == "application/x-www-form-urlencoded");
  }

  TEST_CASE("plain http is refused unless the config allowed it")
  {
    asio::io_context ioc;
    auto o = options_for("http://127.0.0.1:1/");
    o.allow_http = false;
    auto c = net::Client::create(ioc.get_executor(), std::move(o));
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message.find("plain http is not allowed") != std::string::npos);
  }

  TEST_CASE("TLS against a pinned ca_file succeeds")
  {
    asio::io_context ioc;
    TempDir dir;
    const auto cert = make_certificate("IP:127.0.0.1,DNS:localhost");
    TestServer server(
      ioc, [](const Seen&, int) { return Reply{ http_reply(200, "tls ok") }; }, &cert);
    for (const std::string host : { "127.0.0.1", "localhost" }) {
      auto o = options_for(fmt::format("https://{}:{}/", host, server.port()));
      o.ca_file = dir.write("ca.pem", cert.cert_pem);
      auto client = make_client(ioc, std::move(o));
      auto r = one(ioc, *client, net::Request::get("api/json"));
      REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
      CHECK(r->text() == "tls ok");
      ioc.restart();
    }
  }

  TEST_CASE("an untrusted certificate fails closed, without a retry")
  {
    asio::io_context ioc;
    TempDir dir;
    const auto cert = make_certificate("IP:127.0.0.1");
    const auto other = make_certificate("IP:127.0.0.1");
    TestServer server(
      ioc, [](const Seen&, int) { return Reply{ http_reply(200, "secret") }; }, &cert);
    auto o = options_for(fmt::format("https://127.0.0.1:{}/", server.port()));
    o.ca_file = dir.write("other.pem", other.cert_pem);
    auto client = make_client(ioc, std::move(o));
    auto r = one(ioc, *client, net::Request::get("api/json"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::tls);
    CHECK(r.error().message.find("certificate") != std::string::npos);
    CHECK(server.connections == 1);
    CHECK(server.requests == 0);
  }

  TEST_CASE("a certificate that does not name the host fails closed")
  {
    asio::io_context ioc;
    TempDir dir;
    const auto cert = make_certificate("IP:127.0.0.1");
    TestServer server(
      ioc, [](const Seen&, int) { return Reply{ http_reply(200, "x") }; }, &cert, "127.0.0.2");
    auto o = options_for(fmt::format("https://127.0.0.2:{}/", server.port()));
    o.ca_file = dir.write("ca.pem", cert.cert_pem);
    auto client = make_client(ioc, std::move(o));
    auto r = one(ioc, *client, net::Request::get("api/json"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::tls);
    CHECK(r.error().message.find("does not name host 127.0.0.2") != std::string::npos);
    CHECK(server.requests == 0);
  }

  TEST_CASE("401 is an auth failure and is not retried")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) { return Reply{ http_reply(401, "no") }; });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto r = one(ioc, *client, net::Request::get("api/json"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::auth);
    CHECK(r.error().status == 401);
    CHECK(r.error().message.find("admin_user \"admin\"") != std::string::npos);
    CHECK(r.error().message.find("11aaaa") == std::string::npos);
    CHECK(server.requests == 1);
  }

  TEST_CASE("403 names the permission from X-Required-Permission")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) {
      return Reply{ http_reply(403, "<html>Access Denied</html>",
                               "X-Required-Permission: hudson.model.Hudson.Administer\r\n") };
    });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto r = one(ioc, *client, post_script(false));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::forbidden);
    CHECK(r.error().message.find("hudson.model.Hudson.Administer") != std::string::npos);
    CHECK(server.requests == 1);
  }

  TEST_CASE("a crumb refusal fetches a crumb with its session cookie and retries once")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen& s, int) {
      if (s.target == "/crumbIssuer/api/json") {
        return Reply{ http_reply(200, R"({"crumbRequestField":"Jenkins-Crumb","crumb":"c0ffee"})",
                                 "Set-Cookie: JSESSIONID.ab12=node0xyz; Path=/; HttpOnly\r\n",
                                 "application/json") };
      }
      const auto crumb = s.headers.find("jenkins-crumb");
      const auto cookie = s.headers.find("cookie");
      if (crumb != s.headers.end() && crumb->second == "c0ffee" && cookie != s.headers.end() &&
          cookie->second == "JSESSIONID.ab12=node0xyz") {
        return Reply{ http_reply(200, "ran") };
      }
      return Reply{ http_reply(403, "Error 403 No valid crumb was included in the request") };
    });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto r = one(ioc, *client, post_script(false));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    CHECK(r->text() == "ran");
    REQUIRE(server.seen.size() == 3);
    CHECK(server.seen[1].target == "/crumbIssuer/api/json");
  }

  TEST_CASE("a crumb refused twice is forbidden")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen& s, int) {
      if (s.target == "/crumbIssuer/api/json") {
        return Reply{ http_reply(200, R"({"crumbRequestField":"Jenkins-Crumb","crumb":"x"})") };
      }
      return Reply{ http_reply(403, "No valid crumb was included in the request") };
    });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto r = one(ioc, *client, post_script(false));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::forbidden);
    CHECK(server.requests == 3);
  }

  TEST_CASE("a redirect names its target")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) {
      return Reply{ http_reply(302, "", "Location: https://sso.example.com/login?next=x\r\n") };
    });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto r = one(ioc, *client, net::Request::get("api/json"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::redirect);
    CHECK(r.error().message.find("https://sso.example.com/login?next=x") != std::string::npos);
  }

  TEST_CASE("an idempotent request survives 503 twice; a mint gets outcome_unknown at once")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int i) {
      return Reply{ i <= 2 ? http_reply(503, "busy") : http_reply(200, "ok") };
    });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto r = one(ioc, *client, post_script(true));
    REQUIRE(r.has_value());
    CHECK(r->attempts == 3);
    CHECK(server.requests == 3);

    ioc.restart();
    TestServer busy(ioc, [](const Seen&, int) { return Reply{ http_reply(502, "bad gateway") }; });
    auto mint_client = make_client(ioc, options_for(http_url(busy)));
    auto m = one(ioc, *mint_client, post_script(false));
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().kind == net::FailureKind::outcome_unknown);
    CHECK(busy.requests == 1);
  }

  TEST_CASE("503 on every try gives up after the configured attempts")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) { return Reply{ http_reply(503, "busy") }; });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto r = one(ioc, *client, net::Request::get("api/json"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::http_status);
    CHECK(r.error().status == 503);
    CHECK(server.requests == 3);
  }

  TEST_CASE("a dropped answer: a mint is outcome_unknown without retry, a GET is retried")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int i) {
      Reply r{ http_reply(200, "second") };
      r.drop = i == 1;
      return r;
    });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto m = one(ioc, *client, post_script(false));
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().kind == net::FailureKind::outcome_unknown);
    CHECK(server.requests == 1);

    ioc.restart();
    TestServer again(ioc, [](const Seen&, int i) {
      Reply r{ http_reply(200, "second") };
      r.drop = i == 1;
      return r;
    });
    auto get_client = make_client(ioc, options_for(http_url(again)));
    auto g = one(ioc, *get_client, net::Request::get("api/json"));
    REQUIRE(g.has_value());
    CHECK(g->text() == "second");
    CHECK(again.requests == 2);
  }

  TEST_CASE("a mint is retried when the TLS handshake failed, since nothing was sent")
  {
    asio::io_context ioc;
    TempDir dir;
    const auto cert = make_certificate("IP:127.0.0.1");
    TestServer server(
      ioc, [](const Seen&, int) { return Reply{ http_reply(200, "minted") }; }, &cert);
    server.close_first_connections = 1;
    auto o = options_for(fmt::format("https://127.0.0.1:{}/", server.port()));
    o.ca_file = dir.write("ca.pem", cert.cert_pem);
    auto client = make_client(ioc, std::move(o));
    auto r = one(ioc, *client, post_script(false));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    CHECK(r->text() == "minted");
    CHECK(server.connections == 2);
    CHECK(server.requests == 1);
  }

  TEST_CASE("a silent server: timeouts are retried for a GET and outcome_unknown for a mint")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) {
      Reply r{ http_reply(200, "late") };
      r.delay = 1000ms;
      return r;
    });
    auto o = options_for(http_url(server));
    o.timeout = 150ms;
    o.retry.attempts = 2;
    auto client = make_client(ioc, std::move(o));
    auto g = one(ioc, *client, net::Request::get("api/json"));
    REQUIRE_FALSE(g.has_value());
    CHECK(g.error().kind == net::FailureKind::timeout);
    CHECK(server.requests == 2);

    ioc.restart();
    auto m = one(ioc, *client, post_script(false));
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().kind == net::FailureKind::outcome_unknown);
    CHECK(server.requests == 3);
  }

  TEST_CASE("an oversized or garbage answer is bad_output and not retried")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen& s, int) {
      if (s.target == "/big") {
        return Reply{ http_reply(200, std::string(5000, 'x')) };
      }
      return Reply{ "\x16\x03garbage that is not HTTP\r\n\r\n", true };
    });
    auto client = make_client(ioc, options_for(http_url(server)));
    auto big = net::Request::get("big");
    big.body_limit = 4096;
    auto b = one(ioc, *client, big);
    REQUIRE_FALSE(b.has_value());
    CHECK(b.error().kind == net::FailureKind::bad_output);
    CHECK(b.error().message.find("larger than 4096 bytes") != std::string::npos);
    ioc.restart();
    auto g = one(ioc, *client, net::Request::get("garbage"));
    REQUIRE_FALSE(g.has_value());
    CHECK(g.error().kind == net::FailureKind::bad_output);
    CHECK(server.requests == 2);
  }

  TEST_CASE("at most max_concurrent requests are in flight; the rest queue")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) {
      Reply r{ http_reply(200, "ok") };
      r.delay = 50ms;
      return r;
    });
    auto o = options_for(http_url(server));
    o.max_concurrent = 2;
    auto client = make_client(ioc, std::move(o));
    int done = 0;
    for (int i = 0; i < 6; ++i) {
      asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          auto r = co_await client->request(net::Request::get("api/json"));
          done += r.has_value() ? 1 : 0;
        },
        asio::detached);
    }
    run_client(ioc, [&]() -> asio::awaitable<void> {
      asio::steady_timer t(ioc);
      while (done < 6) {
        t.expires_after(10ms);
        co_await t.async_wait(asio::use_awaitable);
      }
    });
    CHECK(done == 6);
    CHECK(server.max_in_flight == 2);
    CHECK(server.connections == 2);
  }

  TEST_CASE("verifications have their own limit beside max_concurrent")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) {
      Reply r{ http_reply(200, "ok") };
      r.delay = 50ms;
      return r;
    });
    auto o = options_for(http_url(server));
    o.max_concurrent = 1;
    o.verify_concurrent = 3;
    auto client = make_client(ioc, std::move(o));
    int done = 0;
    for (int i = 0; i < 8; ++i) {
      asio::co_spawn(
        ioc,
        [&, i]() -> asio::awaitable<void> {
          auto request = net::Request::get(i < 2 ? "scriptText" : "whoAmI/api/json");
          request.verification = i >= 2;
          auto r = co_await client->request(std::move(request));
          done += r.has_value() ? 1 : 0;
        },
        asio::detached);
    }
    run_client(ioc, [&]() -> asio::awaitable<void> {
      asio::steady_timer t(ioc);
      while (done < 8) {
        t.expires_after(10ms);
        co_await t.async_wait(asio::use_awaitable);
      }
    });
    CHECK(done == 8);
    // One script and three verifications at once: neither waits for the other's limit.
    CHECK(server.max_in_flight == 4);
    CHECK(server.connections == 4);
  }

  TEST_CASE("the circuit opens after repeated connect failures and fails fast")
  {
    asio::io_context ioc;
    unsigned short port = 0;
    {
      tcp::acceptor probe(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      port = probe.local_endpoint().port();
    }
    auto o = options_for(fmt::format("http://127.0.0.1:{}/", port));
    o.retry.attempts = 1;
    o.circuit_threshold = 2;
    auto client = make_client(ioc, std::move(o));
    for (int i = 0; i < 2; ++i) {
      auto r = one(ioc, *client, net::Request::get("api/json"));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == net::FailureKind::unreachable);
      CHECK(r.error().message.find("cannot connect") != std::string::npos);
      ioc.restart();
    }
    auto r = one(ioc, *client, net::Request::get("api/json"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("2 connect failures in a row") != std::string::npos);
  }
}

TEST_SUITE("net::read_token_file")
{
  // Token files are 0600 (the config refuses anything readable by others).
  std::string write_token(const TempDir& dir, const std::string& name, const std::string& text)
  {
    const auto p = dir.write(name, text);
    ::chmod(p.c_str(), 0600);
    return p;
  }

  TEST_CASE("the trailing newline is stripped; empty or multi-line files are refused")
  {
    TempDir dir;
    auto t = net::read_token_file(write_token(dir, "t", "11abc\r\n"));
    REQUIRE(t.has_value());
    CHECK(std::string(reinterpret_cast<const char*>(t->data()), t->size()) == "11abc");
    auto empty = net::read_token_file(write_token(dir, "e", "\n"));
    REQUIRE_FALSE(empty.has_value());
    CHECK(empty.error().message.find("empty") != std::string::npos);
    auto two = net::read_token_file(write_token(dir, "two", "a\nb\n"));
    REQUIRE_FALSE(two.has_value());
    CHECK(two.error().message.find("secret") == std::string::npos);
    auto missing = net::read_token_file((dir.path / "missing").string());
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find("missing") != std::string::npos);
  }

  TEST_CASE("a FIFO is refused at once, a file readable by others too (issue 19)")
  {
    TempDir dir;
    const auto fifo = (dir.path / "fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto r = net::read_token_file(fifo); // would block forever in open(2) without O_NONBLOCK
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("expected a regular file, found a FIFO") != std::string::npos);
    const auto open = dir.write("open", "11abc\n");
    ::chmod(open.c_str(), 0644);
    auto readable = net::read_token_file(open);
    REQUIRE_FALSE(readable.has_value());
    CHECK(readable.error().kind == "permission");
    CHECK(readable.error().message.find("0644") != std::string::npos);
  }

  TEST_CASE("secure_wipe zeroes a live buffer")
  {
    net::WipedBytes body{ 's', 'e', 'c', 'r', 'e', 't' };
    net::secure_wipe(body.data(), body.size());
    CHECK(std::all_of(body.begin(), body.end(), [](char c) { return c == 0; }));
  }
}

TEST_SUITE("net::Client for endpoints that are not Jenkins")
{
  TEST_CASE("no admin_user: no Authorization of ours; a PUT carries the caller's headers")
  {
    asio::io_context ioc;
    TestServer server(ioc, [](const Seen&, int) {
      return Reply{ http_reply(403, "No valid crumb was included in the request") };
    });
    auto o = options_for(http_url(server));
    o.admin_user.clear();
    o.admin_token = {};
    o.jenkins = false;
    auto client = make_client(ioc, std::move(o));
    net::Request r;
    r.method = net::Method::put;
    r.target = "v1/x?y=1";
    r.content_type = "application/json";
    r.body = "{}";
    r.headers = { { "X-Api-Key", "k1" }, { "Content-Length", "999" }, { "host", "evil" } };
    auto res = one(ioc, *client, r);
    REQUIRE_FALSE(res.has_value());
    // Not Jenkins: a 403 is a plain status, and no crumb is fetched.
    CHECK(res.error().kind == net::FailureKind::http_status);
    CHECK(res.error().status == 403);
    REQUIRE(server.seen.size() == 1);
    const auto& s = server.seen[0];
    CHECK(s.method == "PUT");
    CHECK(s.target == "/v1/x?y=1");
    CHECK(s.body == "{}");
    CHECK(s.headers.count("authorization") == 0);
    CHECK(s.headers.at("x-api-key") == "k1");
    CHECK(s.headers.at("content-length") == "2");
    CHECK(s.headers.at("host") == fmt::format("127.0.0.1:{}", server.port()));
  }

  TEST_CASE("split_url gives the base and the target with its query")
  {
    auto s = net::split_url("https://secrets.internal:8443/v1/jenkins/svc?env=prod#frag");
    REQUIRE(s.has_value());
    CHECK(s->first == "https://secrets.internal:8443/");
    CHECK(s->second == "v1/jenkins/svc?env=prod");
    s = net::split_url("http://[::1]/");
    REQUIRE(s.has_value());
    CHECK(s->first == "http://[::1]/");
    CHECK(s->second == "");
    CHECK_FALSE(net::split_url("ftp://x/").has_value());
    CHECK_FALSE(net::split_url("/relative").has_value());
  }

  TEST_CASE("framing headers are recognised in any case")
  {
    CHECK(net::is_framing_header("Content-Length"));
    CHECK(net::is_framing_header("TRANSFER-ENCODING"));
    CHECK(net::is_framing_header("host"));
    CHECK_FALSE(net::is_framing_header("Authorization"));
    CHECK_FALSE(net::is_framing_header("Hosts"));
  }
}
