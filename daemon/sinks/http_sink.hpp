#pragma once

#include "net/http_client.hpp"
#include "sinks/sink.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sinks {

// Sends the envelope to one URL through net::Client (not a Jenkins client: no admin
// auth, no crumbs): `method` PUT or POST, Content-Type application/json, the
// configured headers, and Idempotency-Key set to the token uuid so a retried delivery
// can be recognised. Header values may be credentials: they live in wiped buffers and
// appear in no message or log line. The connection is kept alive between deliveries.
class HttpSink : public Sink
{
public:
  // Builds the client on `executor` (the daemon's io_context): checks the URL and loads
  // the TLS trust (ca_file or the system store). Errors name the config mark.
  static util::Result<std::unique_ptr<HttpSink>> create(const config::Sink& config,
                                                        boost::asio::any_io_executor executor);

  // ok on 2xx. rejected on a 3xx (not followed; the message names the Location), on a
  // 4xx other than 408 and 429, and on a TLS failure (an untrusted or misnamed
  // certificate does not fix itself). retryable on 408, 429, 5xx, a timeout, a refused
  // or dropped connection, and an answer that is not HTTP.
  boost::asio::awaitable<Outcome> deliver(const Delivery& delivery) override;
  [[nodiscard]] std::string describe() const override;

private:
  HttpSink(const config::Sink& config, std::unique_ptr<net::Client> client, std::string target);

  std::string m_url;        // as written (config::Sink::url_display): for messages
  std::string m_secret_url; // expanded: only to keep it out of net's messages
  std::string m_target;
  net::Method m_method;
  std::vector<net::Header> m_headers;
  std::unique_ptr<net::Client> m_client;
};

} // namespace sinks
