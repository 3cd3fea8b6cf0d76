// The only translation unit of net/ that includes Beast and Asio SSL (DESIGN §11).
#include "net/http_client.hpp"

#include "crypto/base64.hpp"
#include "crypto/secret_io.hpp"
#include "net/use_tuple.hpp"
#include "util/backoff.hpp"
#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <unistd.h>

namespace net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t k_header_limit = 64 * 1024;
constexpr std::string_view k_crumb_text = "No valid crumb was included in the request";

// Every buffer that may hold a token or the Authorization header zeroes itself when
// released: the header fields, the read buffer and the body.
using Fields = http::basic_fields<WipingAllocator<char>>;
// The request body too: an addFixedToken form carries the token we chose (auth: self).
using BeastRequest =
  http::request<http::basic_string_body<char, std::char_traits<char>, WipingAllocator<char>>,
                Fields>;
using Body = http::vector_body<char, WipingAllocator<char>>;
using BeastResponse = http::response<Body, Fields>;
using ReadBuffer = beast::basic_flat_buffer<WipingAllocator<char>>;
// Asio's ssl::stream, not beast::ssl_stream: Beast's flat_stream coalesces small writes
// into a buffer of its own that is freed unwiped and would keep the Authorization header.
// Asio hands our buffers to SSL_write directly, which encrypts in place in OpenSSL's
// write buffer.
using TlsStream = ssl::stream<beast::tcp_stream>;

struct Connection
{
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<TlsStream> tls;
  Clock::time_point idle_since;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

// What one try produced: an answer, or a failure and how far the request got.
struct Attempt
{
  std::optional<BeastResponse> response;
  Failure failure;
  bool sent = false;                      // request bytes may have reached the server
  bool connect_failure = false;           // counts toward the circuit
  bool retryable = false;                 // a transient failure (connect, timeout, drop)
  bool stale = false;                     // a pooled connection closed before answering anything
  std::unique_ptr<Connection> connection; // connect() hands its connection over here
};

Failure
fail(FailureKind kind, std::string message, int status = 0)
{
  return Failure{ kind, status, std::move(message) };
}

http::verb
verb_of(Method m)
{
  switch (m) {
    case Method::get:
      return http::verb::get;
    case Method::post:
      return http::verb::post;
    case Method::put:
      return http::verb::put;
  }
  return http::verb::get;
}

bool
is_ip_literal(const std::string& host)
{
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

} // namespace

bool
is_framing_header(std::string_view name)
{
  static constexpr std::string_view k_framing[] = {
    "host",    "content-length", "transfer-encoding", "connection", "keep-alive", "te",
    "trailer", "upgrade"
  };
  return std::any_of(std::begin(k_framing), std::end(k_framing),
                     [&](std::string_view f) { return beast::iequals(f, name); });
}

Result<std::pair<std::string, std::string>>
split_url(const std::string& url)
{
  // A fragment never leaves the client (RFC 9110 §4.2.4), so it is allowed and dropped.
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed || (parsed->scheme() != "https" && parsed->scheme() != "http") ||
      !parsed->has_authority() || parsed->encoded_host().empty()) {
    return fail(FailureKind::unreachable,
                fmt::format("url {}: expected an absolute http(s) URL", url));
  }
  std::string base = fmt::format("{}://{}/", parsed->scheme(), parsed->encoded_host_and_port());
  std::string target(parsed->encoded_path());
  if (target.starts_with('/')) {
    target.erase(0, 1);
  }
  if (parsed->has_query()) {
    target += '?';
    target += parsed->encoded_query();
  }
  return std::pair{ std::move(base), std::move(target) };
}

const char*
to_string(FailureKind kind)
{
  switch (kind) {
    case FailureKind::unreachable:
      return "unreachable";
    case FailureKind::tls:
      return "tls";
    case FailureKind::timeout:
      return "timeout";
    case FailureKind::http_status:
      return "http_status";
    case FailureKind::auth:
      return "auth";
    case FailureKind::forbidden:
      return "forbidden";
    case FailureKind::redirect:
      return "redirect";
    case FailureKind::bad_output:
      return "bad_output";
    case FailureKind::outcome_unknown:
      return "outcome_unknown";
    case FailureKind::script_error:
      return "script_error";
  }
  return "unknown";
}

Failure
bad_output(std::string_view controller, std::string_view what)
{
  return Failure{ FailureKind::bad_output, 0, fmt::format("{}: {}", controller, what) };
}

util::Result<crypto::SecretBytes>
read_token_file(const std::string& path)
{
  auto token =
    crypto::read_secret_file(path, { "", 4096, crypto::SecretFileMode::not_readable_by_others });
  if (!token) {
    return token.error();
  }
  std::size_t size = token->size();
  while (size > 0 && (token->data()[size - 1] == '\n' || token->data()[size - 1] == '\r')) {
    --size;
  }
  token->resize_down(size);
  if (token->empty()) {
    return util::make_error("io", fmt::format("{}: the admin token file is empty", path));
  }
  for (const unsigned char c : token->view()) {
    if (c < 0x21 || c == 0x7f) {
      return util::make_error(
        "io", fmt::format("{}: the token holds whitespace or control characters", path));
    }
  }
  return token;
}

struct Client::Impl
{
  Impl(asio::any_io_executor ex, ClientOptions opts)
    : executor(std::move(ex))
    , options(std::move(opts))
    , requests(executor, options.max_concurrent)
    , verifications(executor, options.verify_concurrent)
    , rng(std::random_device{}())
  {
  }

  asio::any_io_executor executor;
  ClientOptions options;
  bool use_tls = true;
  bool host_is_ip = false;
  std::string host; // for connect, SNI and verification (no IPv6 brackets)
  std::string port;
  std::string host_header;
  std::string prefix; // path of the base URL, ends with '/'
  ssl::context ssl_context{ ssl::context::tls_client };
  WipedString authorization;
  std::vector<std::unique_ptr<Connection>> idle;

  // A FIFO counting semaphore: release() hands the slot straight to the oldest waiter
  // by cancelling one wait on a timer that never expires.
  struct Semaphore
  {
    Semaphore(const asio::any_io_executor& ex, int limit)
      : available(std::max(1, limit))
      , wake(ex)
    {
      wake.expires_at(asio::steady_timer::time_point::max());
    }

    asio::awaitable<void> acquire()
    {
      if (available > 0) {
        --available;
        co_return;
      }
      ++waiters;
      co_await wake.async_wait(k_tuple);
    }

    void release()
    {
      if (waiters > 0) {
        --waiters;
        wake.cancel_one();
      } else {
        ++available;
      }
    }

    int available;
    int waiters = 0;
    asio::steady_timer wake;
  };
  Semaphore requests;      // max_concurrent
  Semaphore verifications; // verify_concurrent

  int connect_failures = 0;
  Clock::time_point circuit_open_until{};

  std::string crumb_field;
  std::string crumb;
  std::string cookie;

  std::mt19937_64 rng;

  // Connections kept for reuse: as many as may be in flight at once.
  [[nodiscard]] int pool_size() const
  {
    return std::max(1, options.max_concurrent) + std::max(1, options.verify_concurrent);
  }

  std::optional<Failure> circuit_check() const
  {
    const auto now = Clock::now();
    if (now < circuit_open_until) {
      const auto left = std::chrono::ceil<std::chrono::seconds>(circuit_open_until - now);
      return fail(FailureKind::unreachable,
                  fmt::format("{}: not contacted: {} connect failures in a row, retrying in {} s",
                              options.name, connect_failures, left.count()));
    }
    return std::nullopt;
  }

  void note_connect(bool failed)
  {
    if (!failed) {
      connect_failures = 0;
      return;
    }
    ++connect_failures;
    if (connect_failures >= options.circuit_threshold) {
      circuit_open_until = Clock::now() + options.circuit_cool_down;
      util::log::warning("{}: {} connect failures in a row: no new requests for {} ms",
                         options.name, connect_failures, options.circuit_cool_down.count());
    }
  }

  std::string where(const std::string& target) const { return options.url + target; }

  std::unique_ptr<Connection> take_idle()
  {
    const auto now = Clock::now();
    while (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      if (now - c->idle_since < options.pool_idle) {
        return c;
      }
      boost::system::error_code ignored;
      c->lowest().socket().close(ignored);
    }
    return nullptr;
  }

  void put_idle(std::unique_ptr<Connection> c)
  {
    if (static_cast<int>(idle.size()) >= pool_size()) {
      boost::system::error_code ignored;
      c->lowest().socket().close(ignored);
      return;
    }
    c->idle_since = Clock::now();
    idle.push_back(std::move(c));
  }

  BeastRequest build(const Request& r) const
  {
    BeastRequest req{ verb_of(r.method), prefix + r.target, 11 };
    req.set(http::field::host, host_header);
    req.set(http::field::user_agent, "jenkins-token-rotator/" JTR_VERSION);
    if (r.authorization) {
      req.set(http::field::authorization, std::string_view(*r.authorization));
    } else if (!authorization.empty()) {
      req.set(http::field::authorization, std::string_view(authorization));
    }
    req.keep_alive(true);
    if (!crumb.empty()) {
      req.set(crumb_field, crumb);
    }
    if (!cookie.empty()) {
      req.set(http::field::cookie, cookie);
    }
    if (r.method != Method::get) {
      req.set(http::field::content_type, r.content_type);
      if (r.secret_body) {
        req.body().assign(r.secret_body->begin(), r.secret_body->end());
      } else {
        req.body().assign(r.body.begin(), r.body.end());
      }
      req.prepare_payload();
    }
    for (const auto& h : r.headers) {
      if (!is_framing_header(h.name)) {
        req.set(h.name, std::string_view(h.value));
      }
    }
    return req;
  }

  asio::awaitable<Attempt> connect()
  {
    Attempt a;
    a.connect_failure = true;
    a.retryable = true;
    auto resolver = std::make_shared<tcp::resolver>(executor);
    asio::steady_timer timer(executor);
    timer.expires_after(options.timeout);
    // The handler shares the resolver: it may run after this frame is gone.
    timer.async_wait([resolver](boost::system::error_code ec) {
      if (!ec) {
        resolver->cancel();
      }
    });
    auto [rec, endpoints] = co_await resolver->async_resolve(host, port, k_tuple);
    const bool timed_out = timer.expiry() <= Clock::now();
    timer.cancel();
    if (rec) {
      a.failure = fail(timed_out ? FailureKind::timeout : FailureKind::unreachable,
                       fmt::format("{}: cannot resolve {}: {}", options.name, host,
                                   timed_out ? "timed out" : rec.message()));
      co_return a;
    }
    auto conn = std::make_unique<Connection>();
    if (use_tls) {
      conn->tls = std::make_unique<TlsStream>(executor, ssl_context);
    } else {
      conn->plain = std::make_unique<beast::tcp_stream>(executor);
    }
    auto& low = conn->lowest();
    low.expires_after(options.timeout);
    auto [cec, ep] = co_await low.async_connect(endpoints, k_tuple);
    if (cec) {
      const bool t = cec == beast::error::timeout;
      a.failure = fail(t ? FailureKind::timeout : FailureKind::unreachable,
                       fmt::format("{}: cannot connect to {}:{}: {}", options.name, host, port,
                                   t ? "timed out" : cec.message()));
      co_return a;
    }
    if (use_tls) {
      SSL* ssl = conn->tls->native_handle();
      // SNI carries names only, never an IP literal (RFC 6066 §3).
      // SSL_set_tlsext_host_name is a macro with a C cast; this is what it expands to.
      if (!host_is_ip && SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                  const_cast<char*>(host.c_str())) != 1) {
        a.failure = fail(FailureKind::tls, fmt::format("{}: cannot set SNI", options.name));
        co_return a;
      }
      auto reason = std::make_shared<std::string>();
      conn->tls->set_verify_callback([check = ssl::host_name_verification(host), reason, h = host](
                                       bool preverified, ssl::verify_context& ctx) mutable {
        if (!preverified) {
          const int err = X509_STORE_CTX_get_error(ctx.native_handle());
          *reason = X509_verify_cert_error_string(err);
          return false;
        }
        if (!check(preverified, ctx)) {
          *reason = fmt::format("the certificate does not name host {}", h);
          return false;
        }
        return true;
      });
      low.expires_after(options.timeout);
      auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, k_tuple);
      if (hec) {
        a.connect_failure = false;
        if (!reason->empty()) {
          // A certificate that is not trusted fails closed and is not retried.
          a.retryable = false;
          a.failure = fail(FailureKind::tls,
                           fmt::format("{}: TLS: {} ({}): {}", options.name, *reason,
                                       options.ca_file.empty() ? "the system trust store"
                                                               : "ca_file " + options.ca_file,
                                       options.url));
        } else if (hec == beast::error::timeout) {
          a.failure =
            fail(FailureKind::timeout,
                 fmt::format("{}: TLS handshake with {}:{} timed out", options.name, host, port));
        } else {
          a.failure = fail(FailureKind::tls, fmt::format("{}: TLS handshake with {}:{} failed: {}",
                                                         options.name, host, port, hec.message()));
        }
        co_return a;
      }
    }
    a.connect_failure = false;
    a.retryable = false;
    a.failure = {};
    a.connection = std::move(conn);
    co_return a;
  }

  template<typename Stream>
  asio::awaitable<bool> exchange(Stream& stream, beast::tcp_stream& low, const BeastRequest& req,
                                 std::size_t limit, bool reused, Attempt& a)
  {
    low.expires_after(options.timeout);
    auto [wec, written] = co_await http::async_write(stream, req, k_tuple);
    a.sent = true;
    if (wec) {
      a.retryable = true;
      a.stale = reused;
      const bool t = wec == beast::error::timeout;
      a.failure =
        fail(t ? FailureKind::timeout : FailureKind::unreachable,
             fmt::format("{}: sending {} failed: {}", options.name,
                         where(std::string(req.target())), t ? "timed out" : wec.message()));
      co_return false;
    }
    ReadBuffer buffer;
    http::response_parser<Body, WipingAllocator<char>> parser;
    parser.body_limit(limit);
    parser.header_limit(k_header_limit);
    low.expires_after(options.timeout);
    auto [rec, n] = co_await http::async_read(stream, buffer, parser, k_tuple);
    const std::string url = where(std::string(req.target().substr(prefix.size())));
    if (rec) {
      if (rec == beast::error::timeout) {
        a.retryable = true;
        a.failure =
          fail(FailureKind::timeout, fmt::format("{}: no answer from {} within {} ms", options.name,
                                                 url, options.timeout.count()));
      } else if (rec == http::error::body_limit) {
        a.failure = fail(
          FailureKind::bad_output,
          fmt::format("{}: the answer from {} is larger than {} bytes", options.name, url, limit));
      } else if (rec == http::error::end_of_stream || rec == http::error::partial_message ||
                 rec.category() != http::make_error_code(http::error::bad_version).category()) {
        // Closed or reset before a whole answer came back.
        a.retryable = true;
        a.stale = reused && !parser.got_some();
        a.failure = fail(FailureKind::unreachable,
                         fmt::format("{}: the connection closed before the answer from {}: {}",
                                     options.name, url, rec.message()));
      } else {
        a.failure =
          fail(FailureKind::bad_output, fmt::format("{}: the answer from {} is not valid HTTP: {}",
                                                    options.name, url, rec.message()));
      }
      co_return false;
    }
    a.response = parser.release();
    // Pipelining is never used, so bytes after the answer mean a confused server.
    co_return a.response->keep_alive() && buffer.size() == 0;
  }

  asio::awaitable<void> shut_down(std::unique_ptr<Connection> c)
  {
    if (c->tls) {
      auto& low = c->lowest();
      low.expires_after(
        std::min<std::chrono::milliseconds>(options.timeout, std::chrono::milliseconds(2000)));
      auto [ec] = co_await c->tls->async_shutdown(k_tuple);
      // Jetty, like most servers, closes the TCP connection without answering our
      // close_notify: stream_truncated here is expected. The answer was already
      // complete by its own framing, so nothing we use can have been cut short.
      if (ec && ec != ssl::error::stream_truncated && ec != beast::error::timeout) {
        util::log::debug("{}: TLS shutdown: {}", options.name, ec.message());
      }
    }
    boost::system::error_code ignored;
    c->lowest().socket().close(ignored);
  }

  asio::awaitable<Attempt> attempt_once(const BeastRequest& req, std::size_t limit, bool may_reuse)
  {
    std::unique_ptr<Connection> conn;
    if (may_reuse) {
      conn = take_idle();
    }
    const bool reused = conn != nullptr;
    if (!conn) {
      Attempt c = co_await connect();
      if (!c.connection) {
        co_return c;
      }
      conn = std::move(c.connection);
    }
    Attempt a;
    bool keep = false;
    if (conn->tls) {
      keep = co_await exchange(*conn->tls, conn->lowest(), req, limit, reused, a);
    } else {
      keep = co_await exchange(*conn->plain, conn->lowest(), req, limit, reused, a);
    }
    if (keep) {
      put_idle(std::move(conn));
    } else if (a.response) {
      co_await shut_down(std::move(conn));
    } else {
      boost::system::error_code ignored;
      conn->lowest().socket().close(ignored);
    }
    co_return a;
  }

  asio::awaitable<void> backoff(int attempt)
  {
    asio::steady_timer t(executor);
    t.expires_after(
      util::full_jitter_delay(options.retry.initial, options.retry.max, attempt, rng));
    co_await t.async_wait(k_tuple);
  }

  Failure classify(const BeastResponse& res, const std::string& url) const
  {
    const int status = res.result_int();
    const std::string reason(res.reason());
    if (status >= 300 && status < 400) {
      const std::string location(res[http::field::location]);
      if (!options.jenkins) {
        // Following would send the body (and the caller's headers) somewhere the
        // config never named.
        return fail(FailureKind::redirect,
                    fmt::format("{}: {} redirects ({}) to {}: not followed; point url there",
                                options.name, url, status,
                                location.empty() ? "nowhere (no Location)" : location),
                    status);
      }
      return fail(FailureKind::redirect,
                  fmt::format("{}: {} redirects ({}) to {}: is a login page (SSO) in front of "
                              "Jenkins? Point url at Jenkins itself",
                              options.name, url, status,
                              location.empty() ? "nowhere (no Location)" : location),
                  status);
    }
    if (!options.jenkins) {
      return fail(FailureKind::http_status,
                  fmt::format("{}: {} answered HTTP {} {}", options.name, url, status, reason),
                  status);
    }
    if (status == 401) {
      return fail(FailureKind::auth,
                  fmt::format("{}: 401 from {}: Jenkins rejected admin_user \"{}\" with the token "
                              "in {}",
                              options.name, url, options.admin_user,
                              "admin_token_file (wrong, expired or revoked)"),
                  status);
    }
    if (status == 403) {
      const std::string permission(res["X-Required-Permission"]);
      if (!permission.empty()) {
        return fail(FailureKind::forbidden,
                    fmt::format("{}: 403 from {}: admin_user \"{}\" lacks the permission {}",
                                options.name, url, options.admin_user, permission),
                    status);
      }
      return fail(
        FailureKind::forbidden,
        fmt::format("{}: 403 from {} for admin_user \"{}\"", options.name, url, options.admin_user),
        status);
    }
    return fail(FailureKind::http_status,
                fmt::format("{}: {} answered HTTP {} {}", options.name, url, status, reason),
                status);
  }

  asio::awaitable<Result<void>> fetch_crumb()
  {
    const auto r = Request::get("crumbIssuer/api/json");
    crumb.clear();
    cookie.clear();
    auto req = build(r);
    Attempt a = co_await attempt_once(req, 64 * 1024, true);
    const std::string url = where(r.target);
    if (!a.response) {
      co_return a.failure;
    }
    if (a.response->result_int() != 200) {
      co_return classify(*a.response, url);
    }
    for (auto it = a.response->find(http::field::set_cookie);
         it != a.response->end() && it->name() == http::field::set_cookie; ++it) {
      std::string_view v = it->value();
      v = v.substr(0, v.find(';'));
      if (v.starts_with("JSESSIONID")) {
        cookie += (cookie.empty() ? "" : "; ") + std::string(v);
      }
    }
    const auto& body = a.response->body();
    auto json = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("crumb") ||
        !json.contains("crumbRequestField") || !json["crumb"].is_string() ||
        !json["crumbRequestField"].is_string()) {
      co_return fail(FailureKind::bad_output,
                     fmt::format("{}: {} did not answer a crumb", options.name, url));
    }
    crumb_field = json["crumbRequestField"].get<std::string>();
    crumb = json["crumb"].get<std::string>();
    if (crumb_field.empty() || crumb_field.find_first_of(":\r\n ") != std::string::npos ||
        crumb.find_first_of("\r\n") != std::string::npos) {
      crumb.clear();
      co_return fail(FailureKind::bad_output,
                     fmt::format("{}: {} answered a malformed crumb", options.name, url));
    }
    co_return Result<void>{};
  }

  asio::awaitable<Result<Response>> run(const Request& r)
  {
    auto req = build(r);
    const std::size_t limit = r.body_limit.value_or(options.body_limit);
    const int max_attempts = std::max(1, options.retry.attempts);
    const std::string url = where(r.target);
    bool crumb_retried = false;
    int attempt = 0;
    int stale_retries = 0;
    for (;;) {
      if (auto open = circuit_check()) {
        co_return *open;
      }
      ++attempt;
      // A non-idempotent request always gets a fresh connection: on a pooled one a
      // drop could mean "the server closed it while idle" or "it ran and died", and
      // only the fresh connection lets "nothing was sent" be proven.
      Attempt a = co_await attempt_once(req, limit, r.idempotent);
      if (a.stale && r.idempotent && stale_retries < pool_size() + 1) {
        ++stale_retries;
        --attempt;
        continue;
      }
      note_connect(a.connect_failure);
      if (a.response) {
        auto& res = *a.response;
        const int status = res.result_int();
        if (status >= 200 && status < 300) {
          Response out;
          out.status = status;
          out.content_type = std::string(res[http::field::content_type]);
          out.jenkins_version = std::string(res["X-Jenkins"]);
          out.body = std::move(res.body());
          out.attempts = attempt;
          co_return out;
        }
        const auto& body = res.body();
        const bool crumb_missing = options.jenkins && status == 403 &&
                                   std::search(body.begin(), body.end(), k_crumb_text.begin(),
                                               k_crumb_text.end()) != body.end();
        // The CrumbFilter rejects before the script console runs, so a retry after a
        // crumb failure is safe even for a mint; once only, then it is a real 403.
        if (crumb_missing && !crumb_retried) {
          crumb_retried = true;
          auto got = co_await fetch_crumb();
          if (!got) {
            co_return got.error();
          }
          req = build(r);
          --attempt;
          continue;
        }
        if (crumb_missing) {
          co_return fail(FailureKind::forbidden,
                         fmt::format("{}: 403 from {}: the crumb was refused again ({})",
                                     options.name, url, k_crumb_text),
                         status);
        }
        const bool transient = status == 502 || status == 503 || status == 504;
        if (transient && !r.idempotent) {
          // A proxy's 502/504 (and a 503 we cannot tell from one) may come after
          // Jenkins ran the script.
          co_return fail(FailureKind::outcome_unknown,
                         fmt::format("{}: {} answered HTTP {} after the request was sent: the "
                                     "outcome is unknown",
                                     options.name, url, status),
                         status);
        }
        if (transient && attempt < max_attempts) {
          util::log::debug("{}: {} answered {}, retry {} of {}", options.name, url, status, attempt,
                           max_attempts - 1);
          co_await backoff(attempt);
          continue;
        }
        auto f = classify(res, url);
        if (transient) {
          f.message += fmt::format(" (after {} attempts)", attempt);
        }
        co_return f;
      }
      if (!r.idempotent && a.sent) {
        co_return fail(FailureKind::outcome_unknown,
                       fmt::format("{} (after the request was sent: the outcome is unknown)",
                                   a.failure.message));
      }
      if (a.retryable && attempt < max_attempts) {
        util::log::debug("{}: retry {} of {}: {}", options.name, attempt, max_attempts - 1,
                         a.failure.message);
        co_await backoff(attempt);
        continue;
      }
      if (a.retryable && attempt > 1) {
        a.failure.message += fmt::format(" (after {} attempts)", attempt);
      }
      co_return a.failure;
    }
  }
};

// Releases a concurrency slot when the request coroutine ends, however it ends.
struct Permit
{
  Client::Impl::Semaphore& semaphore;
  ~Permit() { semaphore.release(); }
};

Client::Client(std::unique_ptr<Impl> impl)
  : m_impl(std::move(impl))
{
}

Client::~Client() = default;

const std::string&
Client::name() const
{
  return m_impl->options.name;
}

Result<std::unique_ptr<Client>>
Client::create(asio::any_io_executor executor, ClientOptions options)
{
  auto impl = std::make_unique<Impl>(std::move(executor), std::move(options));
  auto& o = impl->options;
  const auto parsed = boost::urls::parse_absolute_uri(o.url);
  if (!parsed) {
    return fail(FailureKind::unreachable, fmt::format("{}: url {} does not parse", o.name, o.url));
  }
  const std::string scheme(parsed->scheme());
  if (scheme != "https" && scheme != "http") {
    return fail(FailureKind::unreachable,
                fmt::format("{}: url {}: expected http or https", o.name, o.url));
  }
  if (scheme == "http" && !o.allow_http) {
    return fail(FailureKind::tls, fmt::format("{}: url {}: plain http is not allowed for this "
                                              "controller (loopback or insecure_http only)",
                                              o.name, o.url));
  }
  impl->use_tls = scheme == "https";
  if (parsed->host_type() == boost::urls::host_type::ipv6) {
    impl->host = std::string(parsed->host_address());
  } else {
    impl->host = std::string(parsed->host());
  }
  impl->host_is_ip = is_ip_literal(impl->host);
  impl->port = parsed->has_port() ? std::string(parsed->port()) : (impl->use_tls ? "443" : "80");
  impl->host_header = std::string(parsed->encoded_host_and_port());
  impl->prefix = std::string(parsed->encoded_path());
  if (impl->prefix.empty() || impl->prefix.back() != '/') {
    impl->prefix += '/';
  }
  if (!o.url.ends_with('/')) {
    o.url += '/';
  }

  auto& ctx = impl->ssl_context;
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // What OpenSSL keeps: it decrypts a record in place in its read buffer, so received
  // plaintext (a minted token) would stay there until overwritten by the next record.
  // SSL_OP_CLEANSE_PLAINTEXT (OpenSSL 3.0) wipes it once SSL_read has copied it out, and
  // on SSL_free; SSL_MODE_RELEASE_BUFFERS also frees the record buffers of an idle
  // connection. Asio's engine buffers and OpenSSL's write buffer hold ciphertext only.
  // From SSL_read on, the bytes live in our wiped read buffer and body.
  SSL_CTX_set_options(native, SSL_OP_CLEANSE_PLAINTEXT);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  ctx.set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  if (!o.ca_file.empty()) {
    ctx.load_verify_file(o.ca_file, ec);
    if (ec) {
      return fail(FailureKind::tls,
                  fmt::format("{}: ca_file {}: cannot load: {}", o.name, o.ca_file, ec.message()));
    }
  } else {
    ctx.set_default_verify_paths(ec);
    if (ec) {
      return fail(FailureKind::tls,
                  fmt::format("{}: cannot load the system trust store: {}", o.name, ec.message()));
    }
  }

  // The token is needed only to build the header: freed (wiped) when this returns.
  const crypto::SecretBytes token = std::move(o.admin_token);
  if (o.admin_user.empty()) {
    return std::unique_ptr<Client>(new Client(std::move(impl)));
  }
  if (auto header = basic_authorization(o.admin_user, token); !header) {
    return fail(
      FailureKind::unreachable,
      fmt::format("{}: cannot build the Authorization header: {}", o.name, header.error().message));
  } else {
    impl->authorization = std::move(*header);
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

util::Result<void>
Client::set_admin_token(const crypto::SecretBytes& token)
{
  if (m_impl->options.admin_user.empty()) {
    return util::make_error(
      "auth", fmt::format("{}: no admin_user to authenticate as", m_impl->options.name));
  }
  auto header = basic_authorization(m_impl->options.admin_user, token);
  if (!header) {
    return header.error();
  }
  m_impl->authorization = std::move(*header);
  return {};
}

util::Result<WipedString>
basic_authorization(const std::string& user, const crypto::SecretBytes& token)
{
  // Preemptive Basic auth: Jenkins answers anonymous requests with 403, never with a
  // challenge (reference §1.5). The plain pair and its base64 live in locked memory; the
  // header value in a wiped buffer, copied into wiped request fields.
  auto pair = crypto::SecretBytes::allocate(user.size() + 1 + token.size());
  if (!pair) {
    return pair.error();
  }
  std::memcpy(pair->data(), user.data(), user.size());
  pair->data()[user.size()] = ':';
  if (!token.empty()) {
    std::memcpy(pair->data() + user.size() + 1, token.data(), token.size());
  }
  auto encoded = crypto::to_base64_secret(pair->view());
  if (!encoded) {
    return encoded.error();
  }
  WipedString header;
  header.reserve(6 + encoded->size());
  header.append("Basic ").append(reinterpret_cast<const char*>(encoded->data()), encoded->size());
  return header;
}

asio::awaitable<Result<Response>>
Client::request(Request request)
{
  auto& impl = *m_impl;
  if (auto open = impl.circuit_check()) {
    co_return *open;
  }
  auto& semaphore = request.verification ? impl.verifications : impl.requests;
  co_await semaphore.acquire();
  const Permit permit{ semaphore };
  co_return co_await impl.run(request);
}

} // namespace net
