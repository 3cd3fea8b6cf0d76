#pragma once

#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

// The plain-HTTP listener of `GET /metrics` (issue 17), served on the daemon's io
// context: no thread, no second HTTP stack. Plain header on purpose: Beast stays in
// metrics_server.cpp (DESIGN §11: each Beast TU costs ~30 s to build).
namespace net {

// The body of one answer, piece by piece: appends the next piece to `out` and returns
// false once the body is complete. Called on the io thread between writes, so a slow
// reader never holds more than one piece.
using BodyPieces = std::function<bool(std::string& out)>;

struct MetricsServerOptions
{
  // HOST:PORT as `metrics.listen` holds it: an IPv4 literal, [IPv6] or a name that
  // resolves locally (localhost). Port 0 takes a free port (tests).
  std::string listen;
  std::chrono::milliseconds read_timeout{ 5000 };   // the whole request, from accept
  std::chrono::milliseconds write_timeout{ 10000 }; // each piece of the answer
  std::size_t header_limit = 8 * 1024;              // request line and headers
  int max_connections = 8;                          // more at once are closed as soon as accepted
};

// True when every address `listen` (HOST:PORT, as MetricsServerOptions::listen) names is a
// loopback one: 127.0.0.0/8, ::1, localhost. Anything else is logged as a warning.
bool is_loopback_listen(const std::string& listen);

class MetricsServer
{
public:
  // Binds and listens on `options.listen`; answers `GET /metrics` with the pieces of
  // `begin()` (one call per request) and anything else with 404. A slow, oversized or
  // malformed request is dropped at its deadline or limit without delaying anything
  // else. Logs where it listens, with a warning when the address is not loopback.
  // Errors: an address that does not parse or resolve, a failed bind (both name it).
  static util::Result<std::unique_ptr<MetricsServer>> start(boost::asio::any_io_executor executor,
                                                            MetricsServerOptions options,
                                                            std::function<BodyPieces()> begin);

  // Stops listening and drops every open connection.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port it listens on (useful with port 0).
  [[nodiscard]] unsigned short port() const;

  struct State;

private:
  explicit MetricsServer(std::shared_ptr<State> state);
  std::shared_ptr<State> m_state;
};

} // namespace net
