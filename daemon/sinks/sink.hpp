#pragma once

#include "config/config.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <string>

// Delivery of sealed envelopes (DESIGN §6). Sinks never see a plain token: the
// envelope is sealed before it gets here, so nothing a sink writes or logs can leak one.
namespace sinks {

enum class Status
{
  ok,
  retryable, // worth another try with backoff (a hook that failed, a 5xx, a timeout)
  rejected,  // will fail the same way until an operator acts (permissions, a 4xx)
};

const char* to_string(Status status);

struct Outcome
{
  Status status = Status::ok;
  // For logs, status and the state store: names the sink and the cause, never a
  // header value nor the envelope.
  std::string message;

  [[nodiscard]] bool ok() const { return status == Status::ok; }
};

// One envelope for one sink; the fields besides the envelope identify the attempt
// (exec hooks get them as JTR_* variables; http uses token_uuid as Idempotency-Key).
struct Delivery
{
  std::string envelope_json; // sealed (DESIGN §6 envelope), one JSON document
  std::string user;
  std::string controller;
  std::string token_uuid;
  std::string token_name;
  std::uint64_t attempt = 0; // the attempt's seq
};

// A configured destination. deliver() runs on the daemon's single io_context and
// never blocks it for longer than a short file operation.
class Sink
{
public:
  virtual ~Sink() = default;

  // Delivers one envelope. Never throws for expected failures: they are outcomes.
  virtual boost::asio::awaitable<Outcome> deliver(const Delivery& delivery) = 0;

  // "file /path", "exec /usr/local/bin/hook", "http https://host/path": for logs.
  [[nodiscard]] virtual std::string describe() const = 0;

  // See sinks::config_hash(); computed once from the config the sink was made from.
  [[nodiscard]] const std::string& config_hash() const { return m_config_hash; }

protected:
  explicit Sink(const config::Sink& config);

private:
  std::string m_config_hash;
};

// Makes the sink a config entry describes. An http sink keeps a net::Client on
// `executor` (the daemon's io_context), which must outlive it; without an executor an
// http sink is an error (kind "internal"). Other errors name the config mark.
util::Result<std::unique_ptr<Sink>> make_sink(const config::Sink& config,
                                              boost::asio::any_io_executor executor = {});

// A stable hex SHA-256 of what decides where and to whom an envelope goes: type,
// recipients, path, command, url, method, header names and the SHA-256 of each header
// value (never the value itself). Timeouts, mode and group are left out: changing
// them does not need a new token. The state store compares it across restarts.
std::string config_hash(const config::Sink& config);

} // namespace sinks
