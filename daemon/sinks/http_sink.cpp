#include "sinks/http_sink.hpp"

#include <fmt/core.h>

#include <climits>

namespace sinks {

namespace {

// A consumer's answer is read only for its status; a bound keeps a confused server
// from filling memory.
constexpr std::size_t k_answer_limit = 1024 * 1024;

// 408 and 429 say "not now" (RFC 9110 §15.5.9, RFC 6585 §4): worth another try,
// unlike the other 4xx, which repeat until the config or the consumer changes.
bool
is_transient_4xx(int status)
{
  return status == 408 || status == 429;
}

Status
status_of(const net::Failure& f)
{
  switch (f.kind) {
    case net::FailureKind::http_status:
      if (f.status >= 500 || is_transient_4xx(f.status)) {
        return Status::retryable;
      }
      return Status::rejected;
    case net::FailureKind::unreachable:
    case net::FailureKind::timeout:
    case net::FailureKind::bad_output:
    case net::FailureKind::outcome_unknown:
      return Status::retryable;
    case net::FailureKind::tls:
    case net::FailureKind::redirect:
    case net::FailureKind::auth:
    case net::FailureKind::forbidden:
    case net::FailureKind::script_error:
      return Status::rejected;
  }
  return Status::rejected;
}

} // namespace

util::Result<std::unique_ptr<HttpSink>>
HttpSink::create(const config::Sink& config, boost::asio::any_io_executor executor)
{
  const auto where = config.mark.to_string();
  if (!executor) {
    return util::make_error(
      "internal", fmt::format("{}: http sink {}: no executor to run on", where, config.url));
  }
  auto split = net::split_url(config.url);
  if (!split) {
    return util::make_error("config",
                            fmt::format("{}: http sink: {}", where, split.error().message));
  }
  net::ClientOptions o;
  o.name = "http sink";
  o.url = split->first;
  o.jenkins = false;
  o.ca_file = config.ca_file;
  // config validation allowed this URL: https, or http to loopback or with insecure_http.
  o.allow_http = true;
  o.timeout = config.timeout;
  o.max_concurrent = 1;
  // The engine retries a retryable outcome with its own backoff (DESIGN §5 `retry`);
  // retrying here as well would multiply the attempts.
  o.retry.attempts = 1;
  o.body_limit = k_answer_limit;
  o.circuit_threshold = INT_MAX;
  auto client = net::Client::create(std::move(executor), std::move(o));
  if (!client) {
    return util::make_error("config", fmt::format("{}: {}", where, client.error().message));
  }
  return std::unique_ptr<HttpSink>(
    new HttpSink(config, std::move(*client), std::move(split->second)));
}

HttpSink::HttpSink(const config::Sink& config, std::unique_ptr<net::Client> client,
                   std::string target)
  : Sink(config)
  , m_url(config.url)
  , m_target(std::move(target))
  , m_method(config.method == "POST" ? net::Method::post : net::Method::put)
  , m_client(std::move(client))
{
  for (const auto& h : config.headers) {
    m_headers.push_back(net::Header{ h.name, net::WipedString(h.value.begin(), h.value.end()) });
  }
}

std::string
HttpSink::describe() const
{
  return "http " + m_url;
}

boost::asio::awaitable<Outcome>
HttpSink::deliver(const Delivery& delivery)
{
  if (delivery.envelope_json.empty()) {
    co_return Outcome{ Status::rejected,
                       fmt::format("http sink {}: refusing an empty envelope", m_url) };
  }
  net::Request r;
  r.method = m_method;
  r.target = m_target;
  r.content_type = "application/json";
  r.body = delivery.envelope_json;
  // The Idempotency-Key lets the consumer drop a repeat, so a resend is harmless.
  r.idempotent = true;
  r.headers = m_headers;
  r.headers.push_back(net::Header{
    "Idempotency-Key", net::WipedString(delivery.token_uuid.begin(), delivery.token_uuid.end()) });
  auto answer = co_await m_client->request(std::move(r));
  if (answer) {
    co_return Outcome{ Status::ok, fmt::format("http sink {}: HTTP {}", m_url, answer->status) };
  }
  // net's messages name the URL and the cause; they never hold a header value or the
  // request body, and the answer's body is not quoted (a consumer might echo ours).
  const auto& f = answer.error();
  co_return Outcome{ status_of(f), f.message };
}

} // namespace sinks
