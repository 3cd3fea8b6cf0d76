// net::Client's handling of HTTP answers: parsing, status classes, retries, the crumb dance,
// keep-alive and body limits. The client has no stream seam (Beast stays inside
// http_client.cpp), so it talks plain HTTP to the unit tests' loopback server
// (tests/unit/net/test_server.hpp), which answers each request with the next chunk of the
// input and then closes the connection. Input layout:
//   byte 0, bit 0: a Jenkins controller (crumbs, 401/403 wording) or a plain endpoint
//           bit 1: admin_user set (preemptive Basic auth)
//           bits 2-3: GET, POST (idempotent), POST (not idempotent), PUT
//           bit 4: a 64-byte body limit (else 1 MiB)
//   the rest: the answers, separated by "~~next~~"; when they run out, connections drop.
// Oracles: no crash, leak or hang; a 2xx is the only success; no failure message quotes
// the admin token or the Authorization header.
#include "crypto/secret_bytes.hpp"
#include "net/http_client.hpp"
#include "net/test_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;

constexpr std::string_view k_separator = "~~next~~";
constexpr std::string_view k_admin_token = "11f00dfacef00dfacef00dfacef00dface";
// base64("admin:11f00dfacef00dfacef00dfacef00dface")
constexpr std::string_view k_basic = "YWRtaW46MTFmMDBkZmFjZWYwMGRmYWNlZjAwZGZhY2VmMDBkZmFjZQ==";

struct Rig
{
  asio::io_context ioc;
  std::vector<std::string> answers;
  int served = 0;
  test_net::TestServer server{ ioc, [this](const test_net::Seen&, int) {
                                test_net::Reply r;
                                if (served >= static_cast<int>(answers.size())) {
                                  r.drop = true;
                                  return r;
                                }
                                r.raw = answers[static_cast<std::size_t>(served++)];
                                r.close_after = true;
                                return r;
                              } };
};

Rig&
rig()
{
  static Rig* r = new Rig; // never destroyed: the server's coroutines outlive each input
  return *r;
}

// A one-certificate trust store: Client::create loads the system store otherwise, about
// 140 certificates per input, which would cost more than the request (plain HTTP here
// never uses it).
const std::string&
ca_file()
{
  static const test_net::TempDir dir;
  static const std::string path =
    dir.write("ca.pem", test_net::make_certificate("IP:127.0.0.1").cert_pem);
  return path;
}

std::vector<std::string>
split_answers(std::string_view text)
{
  std::vector<std::string> out;
  for (;;) {
    const auto at = text.find(k_separator);
    out.emplace_back(text.substr(0, at));
    if (at == std::string_view::npos) {
      return out;
    }
    text.remove_prefix(at + k_separator.size());
  }
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size == 0) {
    return 0;
  }
  auto& r = rig();
  const unsigned mode = data[0];
  r.answers = split_answers({ reinterpret_cast<const char*>(data + 1), size - 1 });
  r.served = 0;

  net::ClientOptions o;
  o.name = "ci";
  o.url = "http://127.0.0.1:" + std::to_string(r.server.port()) + "/jenkins/";
  o.allow_http = true;
  o.ca_file = ca_file();
  o.jenkins = (mode & 1) != 0;
  if ((mode & 2) != 0) {
    o.admin_user = "admin";
    auto token = crypto::SecretBytes::copy_of(
      { reinterpret_cast<const unsigned char*>(k_admin_token.data()), k_admin_token.size() });
    if (!token) {
      std::abort();
    }
    o.admin_token = std::move(*token);
  }
  // Drops and 5xx retry without waiting; a hang shows as a fuzzer timeout, not a wait.
  o.timeout = std::chrono::milliseconds(2000);
  o.retry.attempts = 3;
  o.retry.initial = std::chrono::milliseconds(1);
  o.retry.max = std::chrono::milliseconds(2);
  o.max_concurrent = 1;
  o.circuit_threshold = 1000;
  o.body_limit = (mode & 16) != 0 ? 64 : 1024 * 1024;

  net::Request req;
  switch ((mode >> 2) & 3) {
    case 0:
      req = net::Request::get("whoAmI/api/json");
      break;
    case 1:
      req = net::Request::post_form("scriptText", "script=println", true);
      break;
    case 2:
      req = net::Request::post_form("scriptText", "script=println", false);
      break;
    default:
      req.method = net::Method::put;
      req.target = "sink?x=1";
      req.content_type = "application/json";
      req.body = "{}";
      req.headers.push_back({ "Idempotency-Key", net::WipedString("k") });
      break;
  }

  auto client = net::Client::create(r.ioc.get_executor(), std::move(o));
  if (!client) {
    std::abort();
  }
  std::optional<net::Result<net::Response>> result;
  asio::co_spawn(
    r.ioc, [&]() -> asio::awaitable<void> { result = co_await (*client)->request(req); },
    [](std::exception_ptr e) {
      if (e) {
        std::abort(); // nothing may escape a request
      }
    });
  r.ioc.restart();
  while (!result) {
    if (r.ioc.run_one() == 0) {
      std::abort(); // the request neither finished nor left work: it was lost
    }
  }
  client->reset();
  r.ioc.poll(); // lets the server see the client's connections close

  if (*result) {
    const auto& res = result->value();
    if (res.status < 200 || res.status >= 300 || res.attempts < 1) {
      std::abort();
    }
  } else {
    const auto& message = result->error().message;
    if (message.empty() || message.find(k_admin_token) != std::string::npos ||
        message.find(k_basic) != std::string::npos) {
      std::abort();
    }
  }
  return 0;
}
