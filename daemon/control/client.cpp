#include "control/client.hpp"

#include "util/unique_fd.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

namespace control {

namespace {

using Clock = std::chrono::steady_clock;

// An answer is one line of any length; this only stops a runaway peer from eating memory.
constexpr std::size_t k_max_answer = 256 * 1024 * 1024;

util::Error
fail(std::string kind, std::string message)
{
  return util::make_error(std::move(kind), std::move(message));
}

// Waits for `events` on fd until the deadline; false on timeout.
// time_point::max() waits forever.
bool
wait_for(int fd, short events, Clock::time_point deadline)
{
  for (;;) {
    int timeout_ms = -1;
    if (deadline != Clock::time_point::max()) {
      const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        return false;
      }
      timeout_ms = static_cast<int>(std::min<long long>(left, 60'000));
    }
    pollfd p{ fd, events, 0 };
    const int rc = ::poll(&p, 1, timeout_ms);
    if (rc > 0) {
      return true;
    }
    if (rc < 0 && errno != EINTR) {
      return true; // let the next read/write report the error
    }
  }
}

} // namespace

util::Result<Answer>
call(const std::string& socket_path, const Request& request,
     std::optional<std::chrono::milliseconds> timeout)
{
  const Clock::time_point deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  const auto unavailable = [&socket_path] {
    return fail("unavailable", fmt::format("is the daemon running? (socket {})", socket_path));
  };
  sockaddr_un address{};
  if (socket_path.size() >= sizeof address.sun_path) {
    return fail("io", fmt::format("socket {}: a UNIX socket path holds at most {} bytes",
                                  socket_path, sizeof address.sun_path - 1));
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);

  util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) {
    return fail("io", fmt::format("socket(): {}", std::strerror(errno)));
  }
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) {
      return unavailable();
    }
    if (e == EACCES || e == EPERM) {
      return fail("permission", fmt::format("permission denied (socket {})", socket_path));
    }
    if (e != EAGAIN && e != EINPROGRESS) {
      return fail("io", fmt::format("socket {}: connect: {}", socket_path, std::strerror(e)));
    }
    // The daemon's backlog is full: wait for room within the deadline.
    if (!wait_for(fd.get(), POLLOUT, deadline)) {
      return fail("timeout",
                  fmt::format("socket {}: the daemon did not accept in time", socket_path));
    }
  }

  // Send the request. A daemon that refuses us closes at once: EPIPE here, the reason is
  // in the answer it wrote first, so go on reading.
  const std::string line = format_request(request);
  std::size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd.get(), POLLOUT, deadline)) {
        return fail("timeout", fmt::format("socket {}: the daemon did not read the request in time",
                                           socket_path));
      }
      continue;
    }
    if (n < 0 && errno != EPIPE && errno != ECONNRESET) {
      return fail("io", fmt::format("socket {}: send: {}", socket_path, std::strerror(errno)));
    }
    break;
  }

  std::string answer;
  char buffer[16384];
  for (;;) {
    if (const auto nl = answer.find('\n'); nl != std::string::npos) {
      answer.resize(nl);
      break;
    }
    const ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n > 0) {
      answer.append(buffer, static_cast<std::size_t>(n));
      if (answer.size() > k_max_answer) {
        return fail("protocol",
                    fmt::format("socket {}: an answer over {} bytes", socket_path, k_max_answer));
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd.get(), POLLIN, deadline)) {
        return fail("timeout", fmt::format("socket {}: no answer from the daemon within {} ms",
                                           socket_path, timeout ? timeout->count() : 0));
      }
      continue;
    }
    // EOF or a reset before a whole line: the daemon went away mid-answer.
    return fail("io", fmt::format("socket {}: the daemon closed the connection without an answer",
                                  socket_path));
  }
  auto parsed = parse_answer(answer);
  if (!parsed) {
    return fail("protocol", fmt::format("socket {}: {}", socket_path, parsed.error().message));
  }
  if (!parsed->ok && parsed->error == "permission denied") {
    return fail("permission", fmt::format("permission denied (socket {})", socket_path));
  }
  return parsed;
}

} // namespace control
