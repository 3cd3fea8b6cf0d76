#include "test_support.hpp"

#include "util/log.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace sinks::test {

TempDir::TempDir()
{
  std::string templ = "/tmp/jtr-sinks-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  ::chmod(templ.c_str(), 0755);
  m_path = templ;
}

TempDir::~TempDir()
{
  namespace fs = std::filesystem;
  std::error_code ec;
  // Read-only directories made by a test must become writable to be emptied.
  for (auto it = fs::recursive_directory_iterator(m_path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) {
      ::chmod(it->path().c_str(), 0700);
    }
  }
  fs::remove_all(m_path, ec);
}

LogCapture::LogCapture()
{
  util::log::set_sink([this](std::string_view line) { m_lines.emplace_back(line); });
}

LogCapture::~LogCapture()
{
  util::log::set_sink({});
}

std::string
LogCapture::joined() const
{
  std::string all;
  for (const auto& l : m_lines) {
    all += l;
    all += '\n';
  }
  return all;
}

void
write_file(const std::string& path, const std::string& content, unsigned mode)
{
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

std::string
read_file(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned
file_mode(const std::string& path)
{
  struct stat st
  {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

Outcome
run_delivery(Sink& sink, const Delivery& delivery,
             std::optional<std::chrono::milliseconds> cancel_after)
{
  boost::asio::io_context io;
  std::optional<Outcome> result;
  boost::asio::cancellation_signal cancel;
  boost::asio::co_spawn(
    io, sink.deliver(delivery),
    boost::asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, Outcome o) {
      if (e) {
        std::rethrow_exception(e);
      }
      result = std::move(o);
    }));
  boost::asio::steady_timer timer(io);
  if (cancel_after) {
    timer.expires_after(*cancel_after);
    timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        cancel.emit(boost::asio::cancellation_type::terminal);
      }
    });
  }
  io.run();
  REQUIRE(result.has_value());
  return *result;
}

Outcome
run_unprivileged(const std::function<Outcome()>& fn)
{
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    int code = 0;
    if (::geteuid() == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
        ::_exit(3);
      }
    }
    const Outcome o = fn();
    const std::string line = std::to_string(static_cast<int>(o.status)) + " " + o.message;
    if (::write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      code = 4;
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string text;
  char buf[512];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const auto space = text.find(' ');
  REQUIRE(space != std::string::npos);
  return Outcome{ static_cast<Status>(std::stoi(text.substr(0, space))), text.substr(space + 1) };
}

Delivery
sample_delivery(const std::string& envelope)
{
  Delivery d;
  d.envelope_json = envelope;
  d.user = "svc-deploy";
  d.controller = "ci";
  d.token_uuid = "0b5c9a7e-6f1d-4c3e-9a51-2f8e7d6c5b4a";
  d.token_name = "rotator-5f2a9c1e-000042";
  d.attempt = 42;
  return d;
}

bool
process_gone_within(int pid, std::chrono::milliseconds limit)
{
  // A SIGKILL is delivered asynchronously: under load the target can take a moment to
  // die, so poll instead of checking once.
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (process_alive(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool
process_alive(int pid)
{
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) {
    return false;
  }
  // "pid (comm) S ...": the state follows the last ')'.
  const auto paren = content.rfind(')');
  if (paren == std::string::npos || paren + 2 >= content.size()) {
    return false;
  }
  const char state = content[paren + 2];
  return state != 'Z' && state != 'X';
}

} // namespace sinks::test
