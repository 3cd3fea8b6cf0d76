#include "control/server.hpp"

#include "net/use_tuple.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <grp.h>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <utility>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 // Linux 4.13; older glibc headers lack the name
#endif

namespace control {

namespace asio = boost::asio;
using stream_protocol = asio::local::stream_protocol;

namespace {

using net::k_tuple;
constexpr std::size_t k_max_socket_path = sizeof(sockaddr_un::sun_path) - 1; // 107
constexpr std::size_t k_read_chunk = 4096;

util::Error
control_error(std::string message)
{
  return util::make_error("control", std::move(message));
}

std::string
errno_text(int e)
{
  return std::strerror(e);
}

sockaddr_un
unix_address(const std::string& path)
{
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

// Someone answers at `path` (connect succeeds, or its backlog is full): a live daemon.
util::Result<bool>
someone_listens(const std::string& path)
{
  util::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (probe.get() < 0) {
    return control_error(fmt::format("control socket: socket(): {}", errno_text(errno)));
  }
  const auto address = unix_address(path);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 ||
      errno == EAGAIN || errno == EINPROGRESS) {
    return true;
  }
  if (errno == ECONNREFUSED) {
    return false;
  }
  return control_error(
    fmt::format("control socket {}: cannot tell whether a daemon listens there: connect: {}", path,
                errno_text(errno)));
}

// Binds a new socket file at `path`: a stale one is replaced, a live one refused.
util::Result<int>
bind_socket(const std::string& path, std::optional<gid_t> group)
{
  if (path.empty() || path[0] != '/') {
    return control_error(fmt::format("control socket {}: expected an absolute path", path));
  }
  if (path.size() > k_max_socket_path) {
    return control_error(fmt::format("control socket {}: {} bytes; a UNIX socket path holds at "
                                     "most {}",
                                     path, path.size(), k_max_socket_path));
  }
  struct stat st
  {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return control_error(fmt::format(
        "control socket {}: the path exists and is not a socket; remove it or pick another path",
        path));
    }
    auto live = someone_listens(path);
    if (!live) {
      return live.error();
    }
    if (*live) {
      return control_error(fmt::format(
        "control socket {}: in use: a daemon already answers there (another instance running?)",
        path));
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return control_error(fmt::format("control socket {}: cannot remove the stale socket: {}",
                                       path, errno_text(errno)));
    }
    util::log::info("control: replaced the stale socket {} (nobody answered there)", path);
  }
  util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return control_error(fmt::format("control socket: socket(): {}", errno_text(errno)));
  }
  const auto address = unix_address(path);
  // The file appears at bind() with the umask's mode: make it 0600 from its first instant,
  // then open it to the group. We are single-threaded while starting up.
  const mode_t old_umask = ::umask(0177);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) {
    return control_error(
      fmt::format("control socket {}: bind: {}{}", path, errno_text(bind_errno),
                  bind_errno == EADDRINUSE ? " (another instance running?)" : ""));
  }
  if (group) {
    if (::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0 ||
        ::chmod(path.c_str(), 0660) != 0) {
      const int e = errno;
      ::unlink(path.c_str());
      return control_error(fmt::format("control socket {}: cannot give it to group {}: {}", path,
                                       *group, errno_text(e)));
    }
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return control_error(fmt::format("control socket {}: listen: {}", path, errno_text(e)));
  }
  return fd.release();
}

// The LISTEN_FDS socket for `path`: the one bound there, else the only UNIX stream
// listener systemd passed. -1 when there is none. LISTEN_FDS stays set for the others
// who adopt sockets (metrics).
int
adopted_socket(const std::string& path)
{
  const int n = sd_listen_fds(0);
  if (n <= 0) {
    return -1;
  }
  int only = -1;
  int unix_listeners = 0;
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, path.c_str(), 0) > 0) {
      return fd;
    }
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) > 0) {
      only = fd;
      ++unix_listeners;
    }
  }
  if (unix_listeners == 1) {
    util::log::warning(
      "control: systemd passed a UNIX socket not bound at control.socket {}; using it", path);
    return only;
  }
  return -1;
}

util::Result<gid_t>
group_id(const std::string& name)
{
  std::vector<char> buffer(16384);
  group entry{};
  group* found = nullptr;
  int rc = 0;
  while ((rc = ::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)) ==
           ERANGE &&
         buffer.size() < (1U << 24)) {
    buffer.resize(buffer.size() * 4);
  }
  if (rc != 0) {
    return control_error(fmt::format("control.group {}: {}", name, errno_text(rc)));
  }
  if (found == nullptr) {
    return control_error(fmt::format("control.group {}: no such group", name));
  }
  return entry.gr_gid;
}

// The peer's supplementary groups (SO_PEERGROUPS), as they were when it connected.
std::vector<gid_t>
peer_groups(int fd)
{
  std::vector<gid_t> groups(64);
  for (int tries = 0; tries < 3; ++tries) {
    auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE) {
      util::log::warning("control: SO_PEERGROUPS: {}", errno_text(errno));
      break;
    }
    groups.resize(len / sizeof(gid_t) + 1);
  }
  return {};
}

} // namespace

// One accepted peer: its socket and the deadline of the line it is sending.
struct Connection
{
  Connection(stream_protocol::socket s, Peer p)
    : socket(std::move(s))
    , deadline(socket.get_executor())
    , peer(p)
  {
  }
  stream_protocol::socket socket;
  asio::steady_timer deadline;
  Peer peer;
  std::uint64_t generation = 0; // a timer that fired for an older step is ignored
  bool timed_out = false;
  // Waiting for a request line since then (not while the Backend works or we answer).
  std::optional<asio::steady_timer::time_point> reading_since;
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl>
{
  Impl(asio::any_io_executor ex, Backend& b, ServerOptions o)
    : executor(std::move(ex))
    , backend(b)
    , options(std::move(o))
    , acceptor(executor)
    , drained(executor)
  {
  }

  asio::any_io_executor executor;
  Backend& backend;
  ServerOptions options;
  stream_protocol::acceptor acceptor;
  std::optional<gid_t> group;
  uid_t owner = 0;
  bool adopted = false;
  dev_t bound_dev = 0; // the file we bound, removed at the end only if it is still ours
  ino_t bound_ino = 0;
  std::set<std::shared_ptr<Connection>> connections;
  std::size_t running = 0; // accept loop + connection coroutines
  bool stopping = false;
  asio::steady_timer drained;

  // Counts a coroutine in `running`; the last one out while stopping wakes stop().
  struct Running
  {
    explicit Running(std::shared_ptr<Impl> s)
      : self(std::move(s))
    {
      ++self->running;
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;
    ~Running()
    {
      if (--self->running == 0 && self->stopping) {
        self->drained.cancel();
      }
    }
    std::shared_ptr<Impl> self;
  };

  [[nodiscard]] bool allowed(int fd, const Peer& peer) const
  {
    if (peer.uid == 0 || peer.uid == owner) {
      return true;
    }
    if (!group) {
      return false;
    }
    if (peer.gid == *group) {
      return true;
    }
    const auto groups = peer_groups(fd);
    return std::find(groups.begin(), groups.end(), *group) != groups.end();
  }

  // A refusal is one short line into a fresh socket buffer: written without waiting
  // (it always fits), then the connection is closed.
  static void refuse(stream_protocol::socket& socket, const std::string& message)
  {
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    const std::string line = format_answer(error_answer(message));
    socket.write_some(asio::buffer(line), ec);
    socket.shutdown(stream_protocol::socket::shutdown_both, ec);
    socket.close(ec);
  }

  void arm(const std::shared_ptr<Connection>& c)
  {
    const auto generation = ++c->generation;
    c->deadline.expires_after(options.read_deadline);
    c->deadline.async_wait(
      [weak = std::weak_ptr<Connection>(c), generation](boost::system::error_code ec) {
        auto conn = weak.lock();
        if (ec || !conn || conn->generation != generation) {
          return;
        }
        conn->timed_out = true;
        boost::system::error_code ignored;
        conn->socket.close(ignored);
      });
  }

  static void disarm(const std::shared_ptr<Connection>& c)
  {
    ++c->generation;
    c->deadline.cancel();
  }

  // At the limit, the connection that has waited longest for its request line makes room:
  // silent peers cannot lock the socket for the read deadline; busy ones are never cut.
  void evict_idle()
  {
    std::shared_ptr<Connection> oldest;
    for (const auto& c : connections) {
      if (c->reading_since && (!oldest || *c->reading_since < *oldest->reading_since)) {
        oldest = c;
      }
    }
    if (!oldest) {
      return;
    }
    util::log::info("control: dropped pid {} (uid {}): idle while {} connections are open",
                    oldest->peer.pid, oldest->peer.uid, connections.size());
    boost::system::error_code ignored;
    oldest->socket.close(ignored);
    connections.erase(oldest);
  }

  void admit(stream_protocol::socket socket)
  {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      util::log::warning("control: SO_PEERCRED: {}; connection closed", errno_text(errno));
      return;
    }
    const Peer peer{ cred.pid, cred.uid, cred.gid };
    if (!allowed(socket.native_handle(), peer)) {
      util::log::warning("control: refused uid {} (pid {}): not root, not uid {}{}", peer.uid,
                         peer.pid, owner,
                         group ? fmt::format(", not in group {}", options.group) : "");
      refuse(socket, "permission denied");
      return;
    }
    if (connections.size() >= options.max_connections) {
      evict_idle();
    }
    if (connections.size() >= options.max_connections) {
      util::log::warning("control: refused uid {} (pid {}): {} connections already open", peer.uid,
                         peer.pid, connections.size());
      refuse(socket, fmt::format("too many connections ({} open); try again", connections.size()));
      return;
    }
    auto conn = std::make_shared<Connection>(std::move(socket), peer);
    connections.insert(conn);
    asio::co_spawn(executor, serve(shared_from_this(), conn), [](const std::exception_ptr& e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          util::log::error("control: a connection failed: {}", ex.what());
        }
      }
    });
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self)
  {
    const Running running(self);
    asio::steady_timer pause(self->executor);
    while (!self->stopping) {
      auto [ec, socket] = co_await self->acceptor.async_accept(k_tuple);
      if (self->stopping || ec == asio::error::operation_aborted) {
        break;
      }
      if (ec) {
        // EMFILE and friends: wait a little rather than spin on the error.
        util::log::warning("control: accept: {}", ec.message());
        pause.expires_after(std::chrono::milliseconds(100));
        co_await pause.async_wait(k_tuple);
        continue;
      }
      self->admit(std::move(socket));
    }
  }

  // Writes one answer within the read deadline (a peer that does not read is dropped).
  static asio::awaitable<bool> send(std::shared_ptr<Impl> self, std::shared_ptr<Connection> conn,
                                    std::string text)
  {
    self->arm(conn);
    auto [ec, n] = co_await asio::async_write(conn->socket, asio::buffer(text), k_tuple);
    disarm(conn);
    if (ec) {
      util::log::debug("control: pid {}: answer not delivered: {}", conn->peer.pid,
                       conn->timed_out ? "the peer did not read it in time" : ec.message());
    }
    co_return !ec;
  }

  static asio::awaitable<void> serve(std::shared_ptr<Impl> self, std::shared_ptr<Connection> conn)
  {
    const Running running(self);
    // Leaving by any path closes the socket and forgets the connection.
    struct Forget
    {
      Forget(Impl& i, std::shared_ptr<Connection> c)
        : impl(i)
        , conn(std::move(c))
      {
      }
      Forget(const Forget&) = delete;
      Forget& operator=(const Forget&) = delete;
      ~Forget()
      {
        boost::system::error_code ignored;
        conn->deadline.cancel();
        conn->socket.close(ignored);
        impl.connections.erase(conn);
      }
      Impl& impl;
      std::shared_ptr<Connection> conn;
    };
    const Forget forget(*self, conn);

    std::string pending; // bytes after the last line; never more than a request + a chunk
    std::array<char, k_read_chunk> chunk{};
    while (!self->stopping) {
      // One deadline for the whole line: trickling bytes does not extend it.
      self->arm(conn);
      conn->reading_since = asio::steady_timer::clock_type::now();
      auto newline = pending.find('\n');
      while (newline == std::string::npos && pending.size() <= k_max_request) {
        auto [ec, n] = co_await conn->socket.async_read_some(asio::buffer(chunk), k_tuple);
        if (ec) {
          if (conn->timed_out) {
            util::log::info("control: dropped pid {} (uid {}): no complete request within {} ms",
                            conn->peer.pid, conn->peer.uid, self->options.read_deadline.count());
          }
          co_return; // EOF, a closed or timed-out connection
        }
        pending.append(chunk.data(), n);
        newline = pending.find('\n', pending.size() - n);
      }
      disarm(conn);
      conn->reading_since.reset();
      if (newline == std::string::npos || newline > k_max_request) {
        util::log::warning("control: dropped pid {} (uid {}): a request over {} bytes",
                           conn->peer.pid, conn->peer.uid, k_max_request);
        co_await send(self, conn,
                      format_answer(error_answer(
                        fmt::format("request over {} bytes; connection closed", k_max_request))));
        co_return;
      }
      std::string_view line(pending.data(), newline);
      if (line.ends_with('\r')) {
        line.remove_suffix(1);
      }
      auto request = parse_request(line);
      pending.erase(0, newline + 1);

      Answer answer;
      if (!request) {
        answer = error_answer(request.error().message);
      } else {
        util::log::debug("control: pid {} (uid {}): {}", conn->peer.pid, conn->peer.uid,
                         to_string(request->cmd));
        std::string failure;
        try {
          answer = co_await self->backend.handle(std::move(*request), conn->peer);
        } catch (const std::exception& e) {
          failure = e.what();
        }
        if (!failure.empty()) {
          util::log::error("control: the request of pid {} failed: {}", conn->peer.pid, failure);
          answer = error_answer("internal error (see the daemon's log)");
        }
      }
      if (self->stopping) {
        co_return;
      }
      if (!co_await send(self, conn, format_answer(answer))) {
        co_return;
      }
    }
  }
};

Server::Server(std::shared_ptr<Impl> impl)
  : m_impl(std::move(impl))
{
}

Server::~Server()
{
  boost::system::error_code ignored;
  m_impl->stopping = true;
  m_impl->acceptor.close(ignored);
  for (const auto& c : m_impl->connections) {
    c->socket.close(ignored);
  }
  if (!m_impl->adopted && m_impl->bound_ino != 0) {
    struct stat st
    {};
    if (::lstat(m_impl->options.path.c_str(), &st) == 0 && st.st_dev == m_impl->bound_dev &&
        st.st_ino == m_impl->bound_ino) {
      ::unlink(m_impl->options.path.c_str());
    }
  }
}

util::Result<std::unique_ptr<Server>>
Server::open(asio::any_io_executor executor, Backend& backend, ServerOptions options)
{
  auto impl = std::make_shared<Impl>(std::move(executor), backend, std::move(options));
  const auto& o = impl->options;
  impl->owner = o.owner_uid.value_or(::geteuid());
  if (o.max_connections == 0) {
    return control_error("control: max_connections must be at least 1");
  }
  if (!o.group.empty()) {
    auto gid = group_id(o.group);
    if (!gid) {
      return gid.error();
    }
    impl->group = *gid;
  }
  int fd = o.socket_activation ? adopted_socket(o.path) : -1;
  impl->adopted = fd >= 0;
  if (!impl->adopted) {
    auto bound = bind_socket(o.path, impl->group);
    if (!bound) {
      return bound.error();
    }
    fd = *bound;
    struct stat st
    {};
    if (::stat(o.path.c_str(), &st) == 0) {
      impl->bound_dev = st.st_dev;
      impl->bound_ino = st.st_ino;
    }
  }
  boost::system::error_code ec;
  impl->acceptor.assign(stream_protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return control_error(fmt::format("control socket {}: {}", o.path, ec.message()));
  }
  util::log::info("control: listening on {}{}", o.path, impl->adopted ? " (from systemd)" : "");
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void
Server::start()
{
  asio::co_spawn(m_impl->executor, Impl::accept_loop(m_impl), [](const std::exception_ptr& e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        util::log::error("control: the accept loop failed: {}", ex.what());
      }
    }
  });
}

asio::awaitable<void>
Server::stop()
{
  auto self = m_impl;
  self->stopping = true;
  boost::system::error_code ignored;
  self->acceptor.close(ignored);
  for (const auto& c : self->connections) {
    c->deadline.cancel();
    c->socket.close(ignored);
  }
  while (self->running > 0) {
    self->drained.expires_at(asio::steady_timer::time_point::max());
    co_await self->drained.async_wait(k_tuple);
  }
}

const std::string&
Server::path() const
{
  return m_impl->options.path;
}

bool
Server::adopted() const
{
  return m_impl->adopted;
}

std::size_t
Server::connections() const
{
  return m_impl->connections.size();
}

} // namespace control
