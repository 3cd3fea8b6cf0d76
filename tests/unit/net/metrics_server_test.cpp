#include "net/metrics_server.hpp"
#include "util/log.hpp"

#include <boost/asio.hpp>
#include <doctest/doctest.h>
#include <fmt/core.h>

#include <chrono>
#include <exception>
#include <string>
#include <vector>

// The client side speaks raw HTTP over Asio sockets (no Beast in the test TU: DESIGN §11),
// so the bytes on the wire are what is checked.

using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto k_tuple = asio::as_tuple(asio::use_awaitable);

// Sends `request` (possibly in part) and reads until the server closes; returns what came
// back, and how long it took from connect to close.
struct Exchange
{
  std::string answer;
  std::chrono::milliseconds took{ 0 };
  bool closed = false; // the server closed (EOF or reset) rather than our own timeout
};

asio::awaitable<Exchange>
exchange(unsigned short port, std::string request, std::chrono::milliseconds give_up = 5s)
{
  auto ex = co_await asio::this_coro::executor;
  tcp::socket socket(ex);
  Exchange out;
  auto start = std::chrono::steady_clock::now();
  auto [cec] =
    co_await socket.async_connect({ asio::ip::make_address("127.0.0.1"), port }, k_tuple);
  REQUIRE_FALSE(cec);
  if (!request.empty()) {
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(request), k_tuple);
    (void)wn;
    (void)wec; // the server may close before reading it all (oversized requests)
  }
  asio::steady_timer guard(ex, give_up);
  guard.async_wait([&](boost::system::error_code ec) {
    if (!ec) {
      socket.close();
    }
  });
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), k_tuple);
    out.answer.append(buf, n);
    if (ec) {
      out.closed = ec != asio::error::operation_aborted && ec != asio::error::bad_descriptor;
      break;
    }
  }
  guard.cancel();
  out.took =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  co_return out;
}

// Decodes a chunked body; empty optional-like string "!" when the framing is broken.
std::string
dechunk(std::string_view body)
{
  std::string out;
  for (;;) {
    auto eol = body.find("\r\n");
    if (eol == std::string_view::npos) {
      return "!";
    }
    auto size = std::stoul(std::string(body.substr(0, eol)), nullptr, 16);
    body.remove_prefix(eol + 2);
    if (size == 0) {
      return body == "\r\n" ? out : "!";
    }
    if (body.size() < size + 2) {
      return "!";
    }
    out.append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
}

template<typename F>
void
run_server(asio::io_context& ioc, F body)
{
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(ioc, body(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
    ioc.stop(); // the server's accept loop would keep run_for() busy to its end
  });
  ioc.run_for(20s);
  REQUIRE(done);
  if (failure) {
    std::rethrow_exception(failure);
  }
}

// Three pieces, then done; counts how often a scrape began.
struct Pieces
{
  int begun = 0;
  std::function<net::BodyPieces()> begin()
  {
    return [this] {
      ++begun;
      return [n = 0](std::string& out) mutable {
        out += fmt::format("# HELP x_{0} piece {0}\n# TYPE x_{0} gauge\nx_{0} {0}\n", n);
        return ++n < 3;
      };
    };
  }
  static std::string whole()
  {
    std::string s;
    for (int n = 0; n < 3; ++n) {
      s += fmt::format("# HELP x_{0} piece {0}\n# TYPE x_{0} gauge\nx_{0} {0}\n", n);
    }
    return s;
  }
};

net::MetricsServerOptions
loopback(std::chrono::milliseconds read_timeout = 5s)
{
  net::MetricsServerOptions o;
  o.listen = "127.0.0.1:0";
  o.read_timeout = read_timeout;
  return o;
}

} // namespace

TEST_SUITE("net::MetricsServer")
{
  TEST_CASE("GET /metrics answers 200 with the pieces as one chunked text body")
  {
    asio::io_context ioc;
    Pieces pieces;
    auto server = net::MetricsServer::start(ioc.get_executor(), loopback(), pieces.begin()).value();
    run_server(ioc, [&]() -> asio::awaitable<void> {
      auto r = co_await exchange(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
      CHECK(r.closed);
      auto head_end = r.answer.find("\r\n\r\n");
      REQUIRE(head_end != std::string::npos);
      auto head = r.answer.substr(0, head_end);
      CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      CHECK(head.find("Content-Type: text/plain; version=0.0.4; charset=utf-8") !=
            std::string::npos);
      CHECK(head.find("Transfer-Encoding: chunked") != std::string::npos);
      CHECK(head.find("Connection: close") != std::string::npos);
      CHECK(dechunk(std::string_view(r.answer).substr(head_end + 4)) == Pieces::whole());
      // Prometheus adds no query, but a query does not change the path.
      auto q = co_await exchange(server->port(), "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
      CHECK(q.answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    });
    CHECK(pieces.begun == 2);
  }

  TEST_CASE("anything but GET /metrics is 404, and begins no scrape")
  {
    asio::io_context ioc;
    Pieces pieces;
    auto server = net::MetricsServer::start(ioc.get_executor(), loopback(), pieces.begin()).value();
    run_server(ioc, [&]() -> asio::awaitable<void> {
      for (std::string req :
           { "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET /metrics/x HTTP/1.1\r\nHost: x\r\n\r\n",
             "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
             "HEAD /metrics HTTP/1.0\r\n\r\n" }) {
        auto r = co_await exchange(server->port(), req);
        CHECK_MESSAGE(r.answer.rfind("HTTP/1.", 0) == 0, req);
        CHECK_MESSAGE(r.answer.find(" 404 Not Found\r\n") != std::string::npos, req);
        CHECK(r.closed);
      }
    });
    CHECK(pieces.begun == 0);
  }

  TEST_CASE("a slow request is dropped at its deadline while another is served at once")
  {
    asio::io_context ioc;
    Pieces pieces;
    auto server =
      net::MetricsServer::start(ioc.get_executor(), loopback(300ms), pieces.begin()).value();
    run_server(ioc, [&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      // The slow one sends half a request line and waits.
      Exchange slow;
      bool slow_done = false;
      asio::co_spawn(ex, exchange(server->port(), "GET /metr", 5s),
                     [&](std::exception_ptr e, Exchange r) {
                       REQUIRE_FALSE(e);
                       slow = std::move(r);
                       slow_done = true;
                     });
      asio::steady_timer t(ex, 50ms);
      co_await t.async_wait(asio::use_awaitable);
      auto fast = co_await exchange(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
      CHECK(fast.answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      CHECK(fast.took < 250ms);
      CHECK_FALSE(slow_done);
      while (!slow_done) {
        t.expires_after(20ms);
        co_await t.async_wait(asio::use_awaitable);
      }
      CHECK(slow.closed);
      CHECK(slow.answer.empty());
      CHECK(slow.took >= 250ms);
      CHECK(slow.took < 2s);
    });
  }

  TEST_CASE("a request with headers beyond the limit is dropped unanswered")
  {
    asio::io_context ioc;
    Pieces pieces;
    auto server = net::MetricsServer::start(ioc.get_executor(), loopback(), pieces.begin()).value();
    run_server(ioc, [&]() -> asio::awaitable<void> {
      std::string req =
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n";
      auto r = co_await exchange(server->port(), req);
      CHECK(r.closed);
      CHECK(r.answer.empty());
      CHECK(r.took < 2s);
      auto ok = co_await exchange(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
      CHECK(ok.answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    });
    CHECK(pieces.begun == 1);
  }

  TEST_CASE("a reader that stops reading is dropped without holding up the io loop")
  {
    asio::io_context ioc;
    // A big answer: 256 pieces of 64 KiB (16 MiB), far beyond the socket buffers.
    auto begin = [] {
      return [n = 0](std::string& out) mutable {
        out.append(64 * 1024, 'x');
        out.back() = '\n';
        return ++n < 256;
      };
    };
    auto options = loopback();
    options.write_timeout = 300ms;
    auto server = net::MetricsServer::start(ioc.get_executor(), options, begin).value();
    run_server(ioc, [&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      tcp::socket stalled(ex);
      co_await stalled.async_connect({ asio::ip::make_address("127.0.0.1"), server->port() },
                                     asio::use_awaitable);
      std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
      co_await asio::async_write(stalled, asio::buffer(req), asio::use_awaitable);
      // Never read; meanwhile a timer on the same loop keeps its time.
      auto before = std::chrono::steady_clock::now();
      asio::steady_timer t(ex, 100ms);
      co_await t.async_wait(asio::use_awaitable);
      CHECK(std::chrono::steady_clock::now() - before < 250ms);
      t.expires_after(1500ms);
      co_await t.async_wait(asio::use_awaitable);
      // By now the server gave up: reading drains what was buffered, then the end.
      std::string got;
      char buf[65536];
      for (;;) {
        auto [ec, n] = co_await stalled.async_read_some(asio::buffer(buf), k_tuple);
        got.append(buf, n);
        if (ec) {
          break;
        }
      }
      CHECK(got.size() < 256u * 64 * 1024);
    });
  }

  TEST_CASE("addresses: loopback ones are told apart, bad ones are refused with the address")
  {
    CHECK(net::is_loopback_listen("127.0.0.1:9817"));
    CHECK(net::is_loopback_listen("127.1.2.3:9817"));
    CHECK(net::is_loopback_listen("[::1]:9817"));
    CHECK(net::is_loopback_listen("localhost:9817"));
    CHECK_FALSE(net::is_loopback_listen("0.0.0.0:9817"));
    CHECK_FALSE(net::is_loopback_listen("[::]:9817"));
    CHECK_FALSE(net::is_loopback_listen("10.1.2.3:9817"));
    CHECK_FALSE(net::is_loopback_listen("metrics.example.com:9817"));

    asio::io_context ioc;
    auto begin = [] { return net::BodyPieces([](std::string&) { return false; }); };
    net::MetricsServerOptions o;
    o.listen = "127.0.0.1";
    auto r = net::MetricsServer::start(ioc.get_executor(), o, begin);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("127.0.0.1") != std::string::npos);
    o.listen = "127.0.0.1:99999";
    CHECK_FALSE(net::MetricsServer::start(ioc.get_executor(), o, begin).has_value());
    // A port in use: the message names the address.
    o.listen = "127.0.0.1:0";
    auto first = net::MetricsServer::start(ioc.get_executor(), o, begin).value();
    o.listen = fmt::format("127.0.0.1:{}", first->port());
    auto second = net::MetricsServer::start(ioc.get_executor(), o, begin);
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().message.find(o.listen) != std::string::npos);
  }

  TEST_CASE("start-up logs where it listens; localhost resolves to loopback")
  {
    std::vector<std::string> lines;
    util::log::set_sink([&](std::string_view line) { lines.emplace_back(line); });
    asio::io_context ioc;
    auto begin = [] { return net::BodyPieces([](std::string&) { return false; }); };
    net::MetricsServerOptions o;
    o.listen = "localhost:0";
    auto server = net::MetricsServer::start(ioc.get_executor(), o, begin);
    util::log::set_sink({});
    REQUIRE(server.has_value());
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("serving GET /metrics on ") != std::string::npos);
    CHECK(lines[0].find("not a loopback") == std::string::npos);
  }
}
