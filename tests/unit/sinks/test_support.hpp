#pragma once

#include "sinks/sink.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// Real directories, scripts and processes for the sink tests.
namespace sinks::test {

// A fresh directory under /tmp (0755, so a dropped-privilege child can enter it),
// removed with everything in it at the end of the test.
class TempDir
{
public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  [[nodiscard]] const std::string& path() const { return m_path; }
  [[nodiscard]] std::string operator/(const std::string& name) const { return m_path + "/" + name; }

private:
  std::string m_path;
};

// Collects util::log lines for the lifetime of the object.
class LogCapture
{
public:
  LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  ~LogCapture();

  [[nodiscard]] const std::vector<std::string>& lines() const { return m_lines; }
  [[nodiscard]] std::string joined() const;

private:
  std::vector<std::string> m_lines;
};

void write_file(const std::string& path, const std::string& content, unsigned mode = 0644);
std::string read_file(const std::string& path);
unsigned file_mode(const std::string& path);

// Runs sink.deliver() to completion on a fresh io_context; with cancel_after, emits a
// terminal cancellation into the delivery after that long.
Outcome run_delivery(Sink& sink, const Delivery& delivery,
                     std::optional<std::chrono::milliseconds> cancel_after = std::nullopt);

// Runs `fn` in a forked child that, when we are root, first drops to nobody (65534),
// so permission tests mean the same for root and for other users.
Outcome run_unprivileged(const std::function<Outcome()>& fn);

// A delivery with a small valid envelope.
Delivery sample_delivery(const std::string& envelope = R"({"format":"jenkins-token-rotator/v1"})");

// True while the process exists and is not a zombie.
bool process_alive(int pid);
// True once `pid` is gone (dead or a zombie), polling for at most `limit`.
bool process_gone_within(int pid,
                         std::chrono::milliseconds limit = std::chrono::milliseconds(3000));

} // namespace sinks::test
