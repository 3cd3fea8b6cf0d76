#pragma once

#include "sinks/sink.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace sinks {

struct ExecOptions
{
  // Between SIGTERM and SIGKILL to the hook's process group after a timeout.
  std::chrono::milliseconds kill_grace{ 2000 };
  // How much of the hook's stderr (its last bytes) reaches the log line.
  std::size_t stderr_limit = 4096;
};

// Runs a hook: argv without a shell, the envelope on stdin, stdout discarded, stderr
// captured into the log. The environment is exactly JTR_USER, JTR_CONTROLLER,
// JTR_TOKEN_UUID, JTR_TOKEN_NAME, JTR_ATTEMPT and PATH=/usr/sbin:/usr/bin:/sbin:/bin.
// The hook runs in its own process group; on timeout the whole group is killed.
class ExecSink : public Sink
{
public:
  explicit ExecSink(const config::Sink& config, ExecOptions options = {});

  // ok on exit 0; retryable on another exit code, a signal or the timeout; rejected
  // when the executable or its directory is writable by group or others, or missing.
  boost::asio::awaitable<Outcome> deliver(const Delivery& delivery) override;
  [[nodiscard]] std::string describe() const override;

private:
  std::vector<std::string> m_command;
  std::chrono::seconds m_timeout;
  ExecOptions m_options;
};

// The hook must be a regular executable file that neither it nor its directory (nor,
// through a symlink, the target's directory) is writable by group or others: anyone
// who could replace it would run code as the daemon. Errors name the path.
util::Result<void> check_executable(const std::string& path);

} // namespace sinks
