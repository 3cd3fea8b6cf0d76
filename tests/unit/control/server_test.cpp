#include "control/client.hpp"
#include "control/server.hpp"
#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <doctest/doctest.h>
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <grp.h>
#include <mutex>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct TempDir
{
  std::string path;
  TempDir()
  {
    std::string tmpl = "/tmp/jtr-control-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path = tmpl;
    // Clients running as another uid must reach the socket inside.
    ::chmod(path.c_str(), 0711);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir()
  {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Answers every request with what it saw; `plan` waits until released, `rotate` of the
// slot "boom" throws.
class FakeBackend : public control::Backend
{
public:
  explicit FakeBackend(asio::io_context& io)
    : m_hold(io)
  {
    m_hold.expires_at(asio::steady_timer::time_point::max());
  }

  asio::awaitable<control::Answer> handle(control::Request request, control::Peer peer) override
  {
    ++handled;
    if (request.cmd == control::Command::plan) {
      co_await m_hold.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (request.cmd == control::Command::rotate && !request.slots.empty() &&
        request.slots[0] == "boom") {
      throw std::runtime_error("the fake backend blew up");
    }
    control::Answer a;
    a.fields = { { "cmd", std::string(control::to_string(request.cmd)) },
                 { "uid", peer.uid },
                 { "pid", peer.pid } };
    co_return a;
  }

  void release() { m_hold.cancel(); }

  std::atomic<int> handled = 0;

private:
  asio::steady_timer m_hold;
};

// Log lines from the io thread, read by the test thread.
class LogCapture
{
public:
  LogCapture()
  {
    util::log::set_sink([this](std::string_view line) {
      const std::lock_guard lock(m_mutex);
      m_lines.emplace_back(line);
    });
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  ~LogCapture() { util::log::set_sink({}); }
  bool contains(std::string_view text)
  {
    const std::lock_guard lock(m_mutex);
    for (const auto& l : m_lines) {
      if (l.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

private:
  std::mutex m_mutex;
  std::vector<std::string> m_lines;
};

// A server on its own io thread, as the daemon runs it; stopped and joined at the end.
struct ServerRig
{
  explicit ServerRig(control::ServerOptions options = {})
  {
    if (options.path.empty()) {
      options.path = dir.path + "/control.sock";
    }
    options.socket_activation = false;
    auto s = control::Server::open(io.get_executor(), backend, options);
    if (!s) {
      throw std::runtime_error(s.error().message);
    }
    server = std::move(*s);
    server->start();
    thread = std::thread([this] { io.run(); });
  }
  ServerRig(const ServerRig&) = delete;
  ServerRig& operator=(const ServerRig&) = delete;
  ~ServerRig()
  {
    asio::co_spawn(io, server->stop(), asio::use_future).wait();
    guard.reset();
    thread.join();
  }
  [[nodiscard]] const std::string& path() const { return server->path(); }

  TempDir dir;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{ io.get_executor() };
  FakeBackend backend{ io };
  std::unique_ptr<control::Server> server;
  std::thread thread;
};

// A blocking test client on a raw socket.
int
connect_to(const std::string& path)
{
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void
send_all(int fd, std::string_view text)
{
  while (!text.empty()) {
    const ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// One line (without '\n'); "<eof>" if the peer closed first, "<timeout>" after `wait`.
std::string
read_line(int fd, std::chrono::milliseconds wait = 3s)
{
  std::string line;
  const auto deadline = Clock::now() + wait;
  char c = 0;
  for (;;) {
    const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{ fd, POLLIN, 0 };
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      return "<timeout>";
    }
    const ssize_t n = ::recv(fd, &c, 1, 0);
    if (n <= 0) {
      return "<eof>";
    }
    if (c == '\n') {
      return line;
    }
    line += c;
  }
}

control::Request
status_request()
{
  return control::Request{};
}

std::string
run_command(const std::string& command)
{
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    out.append(buffer, n);
  }
  ::pclose(pipe);
  return out;
}

// A made-up group for the peer tests, removed at the end.
struct TestGroup
{
  TestGroup()
  {
    name = fmt::format("jtr-ctl-{}", ::getpid());
    if (std::system(fmt::format("groupadd {} >/dev/null 2>&1", name).c_str()) != 0) {
      throw std::runtime_error("groupadd failed");
    }
    const group* g = ::getgrnam(name.c_str());
    if (g == nullptr) {
      throw std::runtime_error("the new group is not found");
    }
    gid = g->gr_gid;
  }
  TestGroup(const TestGroup&) = delete;
  TestGroup& operator=(const TestGroup&) = delete;
  ~TestGroup() { [[maybe_unused]] int rc = std::system(("groupdel " + name).c_str()); }
  std::string name;
  gid_t gid = 0;
};

// A client as another user: connects, sends status, prints the answer line or the errno.
constexpr const char* k_python_client = "import socket,sys\n"
                                        "s=socket.socket(socket.AF_UNIX)\n"
                                        "try:\n"
                                        "  s.connect(sys.argv[1])\n"
                                        "except OSError as e:\n"
                                        "  print('connect errno', e.errno); sys.exit(0)\n"
                                        "try:\n"
                                        "  s.sendall(b'{\"v\":1,\"cmd\":\"status\"}\\n')\n"
                                        "except OSError:\n"
                                        "  pass\n"
                                        "d=b''\n"
                                        "while not d.endswith(b'\\n'):\n"
                                        "  c=s.recv(4096)\n"
                                        "  if not c: break\n"
                                        "  d+=c\n"
                                        "sys.stdout.write(d.decode())\n";

} // namespace

TEST_SUITE("control::Server")
{
  TEST_CASE("a request is answered and the connection stays open after an error answer")
  {
    ServerRig rig;
    struct stat st
    {};
    REQUIRE(::stat(rig.path().c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600); // no group configured: owner only

    auto answer = control::call(rig.path(), status_request(), 2s);
    REQUIRE_MESSAGE(answer.has_value(), answer.error().message);
    CHECK(answer->ok);
    CHECK(answer->fields["cmd"] == "status");
    CHECK(answer->fields["uid"] == ::geteuid());
    CHECK(answer->fields["pid"] == ::getpid());

    const int fd = connect_to(rig.path());
    REQUIRE(fd >= 0);
    send_all(fd, "hello\n");
    CHECK(read_line(fd) == R"({"v":1,"ok":false,"error":"not JSON"})");
    send_all(fd, "{\"v\":1,\"cmd\":\"nope\"}\n{\"cmd\":\"status\"}\n");
    CHECK(read_line(fd) == R"({"v":1,"ok":false,"error":"unknown command: nope"})");
    CHECK(read_line(fd) == R"({"v":1,"ok":false,"error":"missing v"})");
    send_all(fd, "{\"v\":1,\"cmd\":\"rotate\",\"slots\":[\"boom\"]}\n");
    CHECK(read_line(fd) ==
          R"x({"v":1,"ok":false,"error":"internal error (see the daemon's log)"})x");
    send_all(fd, "{\"v\":1,\"cmd\":\"reload\"}\n");
    CHECK(read_line(fd).starts_with(R"({"v":1,"ok":true,"cmd":"reload")"));
    ::close(fd);
  }

  TEST_CASE("a line over 64 KiB is cut with an error answer and a close")
  {
    ServerRig rig;
    const int fd = connect_to(rig.path());
    REQUIRE(fd >= 0);
    std::thread writer([fd] { send_all(fd, std::string(1024 * 1024, 'x')); });
    CHECK(read_line(fd) ==
          R"({"v":1,"ok":false,"error":"request over 65536 bytes; connection closed"})");
    CHECK(read_line(fd) == "<eof>");
    writer.join();
    ::close(fd);
    CHECK(rig.backend.handled == 0);
  }

  TEST_CASE("a silent or trickling peer is dropped at the line's deadline")
  {
    control::ServerOptions options;
    options.read_deadline = 300ms;
    ServerRig rig(options);
    const auto start = Clock::now();
    const int silent = connect_to(rig.path());
    const int trickler = connect_to(rig.path());
    REQUIRE(silent >= 0);
    REQUIRE(trickler >= 0);
    std::atomic<bool> stop = false;
    std::thread drip([&] {
      while (!stop) {
        send_all(trickler, "{");
        std::this_thread::sleep_for(50ms);
      }
    });
    CHECK(read_line(silent) == "<eof>");
    CHECK(read_line(trickler) == "<eof>");
    const auto elapsed = Clock::now() - start;
    stop = true;
    drip.join();
    CHECK(elapsed >= 250ms);
    CHECK(elapsed < 1500ms); // the trickle did not extend its deadline
    ::close(silent);
    ::close(trickler);
    // Idle time between two requests counts too; a prompt request is served.
    const int fd = connect_to(rig.path());
    send_all(fd, "{\"v\":1,\"cmd\":\"status\"}\n");
    CHECK(read_line(fd).starts_with(R"({"v":1,"ok":true)"));
    CHECK(read_line(fd) == "<eof>");
    ::close(fd);
  }

  TEST_CASE("50 silent peers and a 1 MiB line do not delay status")
  {
    ServerRig rig;
    std::vector<int> silent;
    for (int i = 0; i < 50; ++i) {
      const int fd = connect_to(rig.path());
      REQUIRE(fd >= 0);
      silent.push_back(fd);
    }
    const int big = connect_to(rig.path());
    REQUIRE(big >= 0);
    std::thread writer([big] { send_all(big, std::string(1024 * 1024, 'x')); });
    std::this_thread::sleep_for(50ms);
    for (int round = 0; round < 3; ++round) {
      const auto start = Clock::now();
      auto answer = control::call(rig.path(), status_request(), 1s);
      const auto elapsed = Clock::now() - start;
      REQUIRE_MESSAGE(answer.has_value(), answer.error().message);
      CHECK(answer->ok);
      CHECK(elapsed < 100ms);
    }
    CHECK(rig.server->connections() <= 32);
    CHECK(read_line(big).find("request over 65536 bytes") != std::string::npos);
    writer.join();
    ::close(big);
    for (const int fd : silent) {
      ::close(fd);
    }
  }

  TEST_CASE("at the limit an idle peer makes room; busy ones get a refusal")
  {
    control::ServerOptions options;
    options.max_connections = 2;
    ServerRig rig(options);
    control::Request plan;
    plan.cmd = control::Command::plan;
    const std::string plan_line = control::format_request(plan);
    const int a = connect_to(rig.path());
    const int b = connect_to(rig.path());
    send_all(a, plan_line);
    send_all(b, plan_line);
    while (rig.backend.handled < 2) {
      std::this_thread::sleep_for(5ms);
    }
    auto refused = control::call(rig.path(), status_request(), 1s);
    REQUIRE(refused.has_value());
    CHECK_FALSE(refused->ok);
    CHECK(refused->error == "too many connections (2 open); try again");
    asio::post(rig.io, [&] { rig.backend.release(); });
    CHECK(read_line(a).starts_with(R"({"v":1,"ok":true,"cmd":"plan")"));
    CHECK(read_line(b).starts_with(R"({"v":1,"ok":true,"cmd":"plan")"));
    // Both now wait for their next line: the older one is dropped for a newcomer.
    auto served = control::call(rig.path(), status_request(), 1s);
    REQUIRE(served.has_value());
    CHECK(served->ok);
    CHECK(read_line(a, 1s) == "<eof>");
    ::close(a);
    ::close(b);
  }

  TEST_CASE("a stale socket file is replaced; a live one, a non-socket and a long path are refused")
  {
    TempDir dir;
    const std::string path = dir.path + "/control.sock";
    {
      // A crashed daemon's socket: bound, then closed without unlinking.
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un address{};
      address.sun_family = AF_UNIX;
      std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
      // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
      REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
      ::close(fd);
    }
    control::ServerOptions options;
    options.path = path;
    LogCapture log;
    ServerRig rig(options);
    CHECK(log.contains("replaced the stale socket"));
    REQUIRE(control::call(path, status_request(), 2s).has_value());

    asio::io_context other;
    FakeBackend backend(other);
    auto second = control::Server::open(other.get_executor(), backend, options);
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().message.find("in use: a daemon already answers there") !=
          std::string::npos);
    // The first one still serves.
    CHECK(control::call(path, status_request(), 2s).has_value());

    options.path = dir.path + "/plain-file";
    {
      std::FILE* f = std::fopen(options.path.c_str(), "w");
      std::fclose(f);
    }
    auto not_socket = control::Server::open(other.get_executor(), backend, options);
    REQUIRE_FALSE(not_socket.has_value());
    CHECK(not_socket.error().message.find("exists and is not a socket") != std::string::npos);
    CHECK(std::filesystem::exists(options.path));

    options.path = "/tmp/" + std::string(103, 'x');
    auto too_long = control::Server::open(other.get_executor(), backend, options);
    REQUIRE_FALSE(too_long.has_value());
    CHECK(too_long.error().message.find("at most 107") != std::string::npos);

    options.path = dir.path + "/g.sock";
    options.group = "no-such-group-jtr";
    auto no_group = control::Server::open(other.get_executor(), backend, options);
    REQUIRE_FALSE(no_group.has_value());
    CHECK(no_group.error().message == "control.group no-such-group-jtr: no such group");
  }

  TEST_CASE("the socket file is removed at the end, unless another took its place")
  {
    std::string path;
    {
      ServerRig rig;
      path = rig.path();
      CHECK(std::filesystem::exists(path));
    }
    CHECK_FALSE(std::filesystem::exists(path));
  }

  TEST_CASE("peers: root and members of the group are served, others refused and logged")
  {
    if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) {
      MESSAGE("skipped: needs root and setpriv");
      return;
    }
    TestGroup group;
    control::ServerOptions options;
    options.group = group.name;
    LogCapture log;
    ServerRig rig(options);
    struct stat st
    {};
    REQUIRE(::stat(rig.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
    CHECK(st.st_gid == group.gid);

    const std::string script = rig.dir.path + "/client.py";
    {
      std::FILE* f = std::fopen(script.c_str(), "w");
      REQUIRE(f != nullptr);
      std::fputs(k_python_client, f);
      std::fclose(f);
      ::chmod(script.c_str(), 0644);
    }
    const auto as = [&](const std::string& setpriv_args) {
      return run_command(
        fmt::format("setpriv {} /usr/bin/python3 {} {}", setpriv_args, script, rig.path()));
    };
    // Not in the group: the file's mode stops it at connect().
    CHECK(as("--reuid 4242 --regid 4242 --clear-groups") == "connect errno 13\n");
    // A supplementary member, and a primary one, are served.
    const auto member = as(fmt::format("--reuid 4242 --regid 4242 --groups {}", group.gid));
    CHECK(member.starts_with(R"({"v":1,"ok":true,"cmd":"status")"));
    CHECK(member.find(R"("uid":4242)") != std::string::npos);
    CHECK(as(fmt::format("--reuid 4243 --regid {} --clear-groups", group.gid))
            .starts_with(R"({"v":1,"ok":true)"));
    // A socket opened to everyone (a .socket unit with SocketMode=0666): the server's own
    // check refuses with one line, closes, and logs the attempt.
    REQUIRE(::chmod(rig.path().c_str(), 0666) == 0);
    CHECK(as("--reuid 4242 --regid 4242 --clear-groups") ==
          "{\"v\":1,\"ok\":false,\"error\":\"permission denied\"}\n");
    CHECK(log.contains("refused uid 4242"));
    CHECK(rig.backend.handled == 2);
    // Root is always served.
    CHECK(control::call(rig.path(), status_request(), 2s).has_value());
  }
}

TEST_SUITE("control::Server socket activation")
{
  TEST_CASE("the socket systemd passes (LISTEN_FDS) is adopted, not bound, and left in place")
  {
    TempDir dir;
    const std::string path = dir.path + "/activated.sock";
    const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
    REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener, 8) == 0);
    // systemd passes its sockets from fd 3 on: put ours there for the test, then give fd 3
    // back to whoever held it.
    const int saved = listener == 3 ? -1 : ::fcntl(3, F_DUPFD_CLOEXEC, 10);
    if (listener != 3) {
      REQUIRE(::dup2(listener, 3) == 3);
      ::close(listener);
    }
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    {
      asio::io_context io;
      FakeBackend backend(io);
      control::ServerOptions options;
      options.path = path;
      auto server = control::Server::open(io.get_executor(), backend, options);
      ::unsetenv("LISTEN_PID");
      ::unsetenv("LISTEN_FDS");
      REQUIRE_MESSAGE(server.has_value(), server.error().message);
      CHECK((*server)->adopted());
      (*server)->start();
      std::thread thread([&io] { io.run(); });
      auto answer = control::call(path, status_request(), 2s);
      REQUIRE_MESSAGE(answer.has_value(), answer.error().message);
      CHECK(answer->ok);
      asio::co_spawn(io, (*server)->stop(), asio::use_future).wait();
      thread.join();
      server->reset();
    }
    // systemd owns the file of a socket it passed.
    CHECK(std::filesystem::exists(path));
    if (saved >= 0) {
      ::dup2(saved, 3);
      ::close(saved);
    }
  }
}

TEST_SUITE("control::call")
{
  TEST_CASE("no daemon: unavailable, naming the socket")
  {
    TempDir dir;
    auto missing = control::call(dir.path + "/none.sock", status_request(), 1s);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().kind == "unavailable");
    CHECK(missing.error().message ==
          fmt::format("is the daemon running? (socket {}/none.sock)", dir.path));
  }

  TEST_CASE("a daemon that does not answer in time is a timeout")
  {
    TempDir dir;
    const std::string path = dir.path + "/mute.sock";
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    const auto start = Clock::now();
    auto answer = control::call(path, status_request(), 200ms);
    REQUIRE_FALSE(answer.has_value());
    CHECK(answer.error().kind == "timeout");
    CHECK(Clock::now() - start < 2s);
    ::close(fd);
  }
}
