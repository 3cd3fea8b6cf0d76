// The only sink translation unit with Asio I/O objects and awaitable operators
// (DESIGN §11: keep coroutine-heavy code in few translation units).
#include "sinks/exec_sink.hpp"

#include "sinks/output_tail.hpp"
#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/core.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace sinks {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto k_use = asio::as_tuple(asio::use_awaitable);
// Without pidfd (kernels before 5.3) the child is polled this often.
constexpr std::chrono::milliseconds k_poll_interval{ 20 };
// SIGKILL cannot be caught; a child still not gone after this is stuck in the kernel.
constexpr std::chrono::seconds k_kill_wait{ 5 };
// A fixed PATH, so hooks find the usual tools but nothing an environment slipped in.
constexpr const char* k_path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

std::string
parent_of(const std::string& path)
{
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

util::Result<void>
check_not_writable(const std::string& path, const char* what)
{
  struct stat st
  {};
  if (::stat(path.c_str(), &st) != 0) {
    return util::make_error("missing", fmt::format("{} {}: {}", what, path, std::strerror(errno)));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return util::make_error("permission",
                            fmt::format("{} {} is writable by group or others (mode {:04o})", what,
                                        path, st.st_mode & 07777));
  }
  return {};
}

// Owns a raw descriptor until an Asio object takes it.
class Fd
{
public:
  Fd() = default;
  explicit Fd(int fd)
    : m_fd(fd)
  {
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  [[nodiscard]] int get() const { return m_fd; }
  int release() { return std::exchange(m_fd, -1); }
  void reset(int fd = -1)
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = fd;
  }

private:
  int m_fd = -1;
};

bool
make_pipe(Fd& read_end, Fd& write_end)
{
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return false;
  }
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return true;
}

// One running hook: its pid, our ends of its pipes, and how it ended.
struct Child
{
  Child(asio::any_io_executor ex, pid_t child_pid, int in_fd, int err_fd, int pid_fd,
        std::size_t stderr_limit)
    : pid(child_pid)
    , in(ex, in_fd)
    , err(ex, err_fd)
    , tail(stderr_limit)
  {
    if (pid_fd >= 0) {
      pidfd.emplace(ex, pid_fd);
    }
  }

  pid_t pid;
  asio::posix::stream_descriptor in;
  asio::posix::stream_descriptor err;
  std::optional<asio::posix::stream_descriptor> pidfd;
  OutputTail tail;
  bool exited = false;
  bool status_lost = false; // reaped by someone else: how it ended is unknown
  int wait_status = 0;
};

bool
try_reap(Child& c)
{
  int status = 0;
  const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
  if (r == c.pid) {
    c.exited = true;
    c.wait_status = status;
    return true;
  }
  // ECHILD: someone else reaped it (a stray waitpid(-1)); treat it as gone.
  if (r < 0 && errno == ECHILD) {
    c.exited = true;
    c.status_lost = true;
    return true;
  }
  return false;
}

// Writes the envelope and closes stdin. A hook that exits without reading gives
// EPIPE, which is fine: its exit code decides.
asio::awaitable<void>
feed(Child& c, const std::string& envelope)
{
  co_await asio::async_write(c.in, asio::buffer(envelope), k_use);
  boost::system::error_code ignored;
  c.in.close(ignored);
}

// Waits for the child to exit and reaps it; then stops the stderr reader, which
// drains what is left (a grandchild may keep the pipe open for ever).
asio::awaitable<void>
reap(Child& c)
{
  auto ex = co_await asio::this_coro::executor;
  while (!c.exited && !try_reap(c)) {
    if (c.pidfd) {
      auto [ec] = co_await c.pidfd->async_wait(asio::posix::descriptor_base::wait_read, k_use);
      if (ec == asio::error::operation_aborted) {
        co_return;
      }
    } else {
      asio::steady_timer t(ex, k_poll_interval);
      auto [ec] = co_await t.async_wait(k_use);
      if (ec == asio::error::operation_aborted) {
        co_return;
      }
    }
  }
  boost::system::error_code ignored;
  c.err.cancel(ignored);
}

void
drain(Child& c)
{
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(c.err.native_handle(), buf, sizeof buf);
    if (n > 0) {
      c.tail.append(std::string_view(buf, static_cast<std::size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return; // EOF, EAGAIN (a grandchild holds the pipe) or an error
  }
}

asio::awaitable<void>
collect(Child& c)
{
  char buf[4096];
  for (;;) {
    if (c.exited) {
      drain(c);
      co_return;
    }
    auto [ec, n] = co_await c.err.async_read_some(asio::buffer(buf), k_use);
    c.tail.append(std::string_view(buf, n));
    if (ec == asio::error::operation_aborted) {
      if (c.exited) {
        drain(c);
      }
      co_return;
    }
    if (ec) {
      co_return; // EOF: every writer closed it
    }
  }
}

// Waits up to `limit` for the child to exit.
asio::awaitable<bool>
wait_exit(Child& c, std::chrono::steady_clock::duration limit)
{
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer t(ex, limit);
  co_await (reap(c) || t.async_wait(k_use));
  co_return c.exited || try_reap(c);
}

std::string
describe_status(int status)
{
  if (WIFEXITED(status)) {
    return fmt::format("exited with code {}", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
  }
  return fmt::format("ended with wait status {}", status);
}

} // namespace

util::Result<void>
check_executable(const std::string& path)
{
  struct stat st
  {};
  if (::stat(path.c_str(), &st) != 0) {
    return util::make_error("missing", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode) || ::access(path.c_str(), X_OK) != 0) {
    return util::make_error("permission",
                            fmt::format("{}: expected an executable regular file", path));
  }
  if (auto r = check_not_writable(path, "executable"); !r) {
    return r;
  }
  if (auto r = check_not_writable(parent_of(path), "directory"); !r) {
    return r;
  }
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return util::make_error("missing", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  if (resolved != path) {
    if (auto r = check_not_writable(parent_of(resolved), "directory"); !r) {
      return r;
    }
  }
  return {};
}

ExecSink::ExecSink(const config::Sink& config, ExecOptions options)
  : Sink(config)
  , m_command(config.command)
  , m_timeout(config.timeout)
  , m_options(options)
{
  // Writing to a hook that exited must give EPIPE, not kill the daemon: Asio writes
  // pipes with write(2), which raises SIGPIPE. Hooks get default dispositions back.
  struct sigaction old
  {};
  if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
    std::signal(SIGPIPE, SIG_IGN);
  }
}

std::string
ExecSink::describe() const
{
  return "exec " + (m_command.empty() ? std::string("(no command)") : m_command.front());
}

asio::awaitable<Outcome>
ExecSink::deliver(const Delivery& delivery)
{
  // A cancelled delivery (the daemon stopping) must still kill and reap its hook:
  // our operations report aborts as values instead of throwing past the cleanup.
  co_await asio::this_coro::throw_if_cancelled(false);
  const std::string name = describe();
  if (m_command.empty()) {
    co_return Outcome{ Status::rejected, name + ": no command" };
  }
  // Checked at each delivery too: the file may have changed since the config was read.
  if (auto r = check_executable(m_command.front()); !r) {
    co_return Outcome{ Status::rejected, fmt::format("{}: {}", name, r.error().message) };
  }

  std::vector<std::string> env = {
    "JTR_USER=" + delivery.user,
    "JTR_CONTROLLER=" + delivery.controller,
    "JTR_TOKEN_UUID=" + delivery.token_uuid,
    "JTR_TOKEN_NAME=" + delivery.token_name,
    fmt::format("JTR_ATTEMPT={}", delivery.attempt),
    k_path,
  };
  for (const auto& e : env) {
    if (e.find('\0') != std::string::npos) {
      co_return Outcome{ Status::rejected, name + ": a JTR_* value holds a NUL byte" };
    }
  }
  std::vector<char*> envp;
  for (auto& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  std::vector<std::string> args = m_command;
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  Fd in_read;
  Fd in_write;
  Fd err_read;
  Fd err_write;
  if (!make_pipe(in_read, in_write) || !make_pipe(err_read, err_write)) {
    co_return Outcome{ Status::retryable,
                       fmt::format("{}: cannot create a pipe: {}", name, std::strerror(errno)) };
  }
  Fd devnull(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (devnull.get() < 0) {
    co_return Outcome{ Status::retryable,
                       fmt::format("{}: cannot open /dev/null: {}", name, std::strerror(errno)) };
  }

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_adddup2(&actions, in_read.get(), STDIN_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, devnull.get(), STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
  // Descriptors without O_CLOEXEC (another library's) must not reach the hook.
  ::posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  // Its own process group (pgid = its pid), so a timeout can kill its children too.
  ::posix_spawnattr_setpgroup(&attr, 0);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    const Status status = (rc == EAGAIN || rc == ENOMEM) ? Status::retryable : Status::rejected;
    co_return Outcome{ status, fmt::format("{}: cannot start: {}", name, std::strerror(rc)) };
  }
  in_read.reset();
  err_write.reset();
  devnull.reset();

  const int pid_fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  auto ex = co_await asio::this_coro::executor;
  Child child(ex, pid, in_write.release(), err_read.release(), pid_fd, m_options.stderr_limit);
  boost::system::error_code ignored;
  child.in.non_blocking(true, ignored);
  child.err.non_blocking(true, ignored);

  asio::steady_timer deadline(ex, m_timeout);
  const auto finished =
    co_await ((feed(child, delivery.envelope_json) && reap(child) && collect(child)) ||
              deadline.async_wait(k_use));

  Outcome outcome;
  if (finished.index() == 0 && child.exited) {
    const int st = child.wait_status;
    if (child.status_lost) {
      outcome = { Status::retryable,
                  name + ": exited, but its status was lost (reaped elsewhere)" };
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      outcome = { Status::ok, name + ": exited with code 0" };
    } else {
      outcome = { Status::retryable, fmt::format("{}: {}", name, describe_status(st)) };
    }
  } else {
    // Timed out or cancelled: the group first gets a chance to clean up, then SIGKILL;
    // SIGKILL goes to the group even if the hook itself left, for its children's sake.
    const bool timed_out = std::chrono::steady_clock::now() >= deadline.expiry();
    ::kill(-pid, SIGTERM);
    co_await wait_exit(child, m_options.kill_grace);
    ::kill(-pid, SIGKILL);
    if (!child.exited && !co_await wait_exit(child, k_kill_wait)) {
      util::log::error("{}: process {} survived SIGKILL; leaving it", name, pid);
    }
    drain(child);
    outcome = { Status::retryable,
                timed_out ? fmt::format("{}: timed out after {}s; killed its process group", name,
                                        m_timeout.count())
                          : name + ": delivery cancelled; killed its process group" };
  }
  if (!child.tail.empty()) {
    const auto text = child.tail.text();
    if (outcome.ok()) {
      util::log::info("{} (user {} on {}, attempt {}): stderr: {}", name, delivery.user,
                      delivery.controller, delivery.attempt, text);
    } else {
      util::log::warning("{} (user {} on {}, attempt {}): stderr: {}", name, delivery.user,
                         delivery.controller, delivery.attempt, text);
    }
  }
  co_return outcome;
}

} // namespace sinks
