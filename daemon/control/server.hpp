#pragma once

#include "control/protocol.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>

namespace control {

// What the daemon does with a request; the server only checks peers, frames lines and
// enforces limits. Runs on the server's executor; may take as long as it needs (a
// `rotate --wait`): the server keeps serving other connections meanwhile.
class Backend
{
public:
  virtual ~Backend() = default;
  virtual boost::asio::awaitable<Answer> handle(Request request, Peer peer) = 0;
};

struct ServerOptions
{
  std::string path;  // control.socket; at most 107 bytes (sun_path holds 108 with its NUL)
  std::string group; // control.group: owns the socket file, members may talk; empty: none
  // A request line must be complete this long after its first byte is awaited (a whole-line
  // deadline, so trickling bytes does not extend it); idle peers are dropped after it too.
  std::chrono::milliseconds read_deadline{ 5000 };
  // Connections open at once. One more makes the connection that has waited longest for its
  // request line close; when all are busy with requests, it gets a "too many connections"
  // answer and is closed.
  std::size_t max_connections = 32;
  // Adopt the socket systemd passes (LISTEN_FDS) instead of binding `path`, when there is one.
  bool socket_activation = true;
  // Besides root, the uid allowed without the group (the daemon's own); default geteuid().
  std::optional<uid_t> owner_uid;
};

// The control socket of a running daemon (DESIGN §7).
class Server
{
public:
  // Binds `options.path` (0660, chown to the group) or adopts a LISTEN_FDS socket. A stale
  // socket file (nobody answers) is replaced; a live one is refused. Errors (kind "control"):
  // path too long, socket in use by a running daemon, unknown group, bind/chown failures.
  static util::Result<std::unique_ptr<Server>> open(boost::asio::any_io_executor executor,
                                                    Backend& backend, ServerOptions options);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Closes the socket and removes the file it bound (not an adopted one's).
  ~Server();

  // Starts accepting (co_spawned on the executor; never throws out of the io loop).
  void start();
  // Stops accepting and closes every connection; completes when all of them have ended.
  // A request being handled by the Backend finishes first (its answer is discarded).
  boost::asio::awaitable<void> stop();

  [[nodiscard]] const std::string& path() const;
  [[nodiscard]] bool adopted() const; // from LISTEN_FDS
  [[nodiscard]] std::size_t connections() const;

  struct Impl;

private:
  explicit Server(std::shared_ptr<Impl> impl);
  // Shared with the accept loop and the connections' coroutines, which outlive no stop().
  std::shared_ptr<Impl> m_impl;
};

} // namespace control
