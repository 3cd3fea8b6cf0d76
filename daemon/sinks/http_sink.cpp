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

// The URL as written (`${…}` unexpanded) for every message: the expanded one may hold
// a secret read through ${file:}. A sink built by hand (tests) has only `url`.
const std::string&
shown_url(const config::Sink& config)
{
  return config.url_display.empty() ? config.url : config.url_display;
}

// `message` with every copy of `secret` (the expanded URL, or its request target)
// replaced by the URL as written.
std::string
without_secret(std::string message, const std::string& secret, const std::string& shown)
{
  if (secret.size() < 2 || shown.find(secret) != std::string::npos) {
    return message;
  }
  for (auto pos = message.find(secret); pos != std::string::npos;
       pos = message.find(secret, pos + shown.size())) {
    message.replace(pos, secret.size(), shown);
  }
  return message;
}

std::string
without_url(std::string message, const config::Sink& config)
{
  return without_secret(std::move(message), config.url, shown_url(config));
}

} // namespace

util::Result<std::unique_ptr<HttpSink>>
HttpSink::create(const config::Sink& config, boost::asio::any_io_executor executor)
{
  const auto where = config.mark.to_string();
  const auto& shown = shown_url(config);
  if (!executor) {
    return util::make_error("internal",
                            fmt::format("{}: http sink {}: no executor to run on", where, shown));
  }
  auto split = net::split_url(config.url);
  if (!split) {
    return util::make_error("config", fmt::format("{}: http sink {}: {}", where, shown,
                                                  without_url(split.error().message, config)));
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
    return util::make_error(
      "config", fmt::format("{}: {}", where, without_url(client.error().message, config)));
  }
  return std::unique_ptr<HttpSink>(
    new HttpSink(config, std::move(*client), std::move(split->second)));
}

HttpSink::HttpSink(const config::Sink& config, std::unique_ptr<net::Client> client,
                   std::string target)
  : Sink(config)
  , m_url(shown_url(config))
  , m_secret_url(config.url)
  , m_target(std::move(target))
  , m_method(config.method == "POST" ? net::Method::post : net::Method::put)
  , m_client(std::move(client))
{
  for (const auto& h : config.headers) {
    const auto value = h.value.view();
    m_headers.push_back(net::Header{ h.name, net::WipedString(value.begin(), value.end()) });
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
  co_return Outcome{ status_of(f), without_secret(without_secret(f.message, m_secret_url, m_url),
                                                  m_target, m_url) };
}

} // namespace sinks
