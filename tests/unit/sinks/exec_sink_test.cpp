#include "sinks/exec_sink.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>

using namespace sinks;
using namespace sinks::test;

namespace {

config::Sink
exec_config(std::vector<std::string> command, int timeout_seconds = 10)
{
  config::Sink c;
  c.type = config::SinkType::exec;
  c.recipients = { "deploy" };
  c.command = std::move(command);
  c.timeout = std::chrono::seconds(timeout_seconds);
  return c;
}

std::string
hook(const TempDir& d, const std::string& name, const std::string& body, unsigned mode = 0755)
{
  const auto path = d / name;
  write_file(path, "#!/bin/sh\n" + body, mode);
  return path;
}

std::vector<std::string>
lines_of(const std::string& text)
{
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) {
      lines.push_back(l);
    }
  }
  return lines;
}

int
read_pid(const std::string& path)
{
  const auto text = read_file(path);
  REQUIRE_FALSE(text.empty());
  return std::stoi(text);
}

double
seconds_since(std::chrono::steady_clock::time_point start)
{
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

TEST_SUITE("sinks::ExecSink")
{
  TEST_CASE("exit 0 is ok; the hook gets the envelope on stdin and exactly the JTR_* environment")
  {
    TempDir d;
    const auto h = hook(d, "publish",
                        "cat > \"$1/stdin.out\"\n"
                        "tr '\\0' '\\n' < /proc/$$/environ > \"$1/env.out\"\n"
                        "printf '%s' \"$2\" > \"$1/arg.out\"\n"
                        "echo \"published for $JTR_USER\" >&2\n");
    // An argument a shell would expand: without a shell it arrives as written.
    const std::string tricky = "two words; $(touch pwned) `id` *";
    ExecSink sink(exec_config({ h, d.path(), tricky }));
    CHECK(sink.describe() == "exec " + h);
    LogCapture logs;
    const auto o = run_delivery(sink, sample_delivery(R"({"format":"jenkins-token-rotator/v1"})"));
    CHECK(o.status == Status::ok);
    CHECK(read_file(d / "stdin.out") == R"({"format":"jenkins-token-rotator/v1"})");
    auto env = lines_of(read_file(d / "env.out"));
    std::sort(env.begin(), env.end());
    CHECK(env == std::vector<std::string>{
                   "JTR_ATTEMPT=42", "JTR_CONTROLLER=ci", "JTR_TOKEN_NAME=rotator-5f2a9c1e-000042",
                   "JTR_TOKEN_UUID=0b5c9a7e-6f1d-4c3e-9a51-2f8e7d6c5b4a", "JTR_USER=svc-deploy",
                   "PATH=/usr/sbin:/usr/bin:/sbin:/bin" });
    CHECK(read_file(d / "arg.out") == tricky);
    CHECK_FALSE(std::filesystem::exists(d / "pwned"));
    REQUIRE(logs.lines().size() == 1);
    CHECK(logs.lines()[0].find("stderr: published for svc-deploy") != std::string::npos);
  }

  TEST_CASE("exit 1 is retryable with the exit code, and stderr reaches the log")
  {
    TempDir d;
    const auto h = hook(d, "fail", "cat >/dev/null\necho 'vault said no' >&2\nexit 1\n");
    ExecSink sink(exec_config({ h }));
    LogCapture logs;
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.status == Status::retryable);
    CHECK(o.message == "exec " + h + ": exited with code 1");
    REQUIRE(logs.lines().size() == 1);
    CHECK(logs.lines()[0].find("warning") != std::string::npos);
    CHECK(logs.lines()[0].find("user svc-deploy on ci, attempt 42") != std::string::npos);
    CHECK(logs.lines()[0].find("stderr: vault said no") != std::string::npos);
  }

  TEST_CASE("a hook that hangs is killed with its children at the timeout")
  {
    TempDir d;
    const auto h = hook(d, "hang",
                        "sleep 1000 &\n"
                        "echo $! > \"$1/child.pid\"\n"
                        "echo $$ > \"$1/hook.pid\"\n"
                        "sleep 1000\n");
    ExecOptions options;
    options.kill_grace = std::chrono::milliseconds(500);
    ExecSink sink(exec_config({ h, d.path() }, 1), options);
    const auto start = std::chrono::steady_clock::now();
    const auto o = run_delivery(sink, sample_delivery());
    const double elapsed = seconds_since(start);
    CHECK(o.status == Status::retryable);
    CHECK(o.message.find("timed out after 1s; killed its process group") != std::string::npos);
    CHECK(elapsed >= 1.0);
    CHECK(elapsed < 3.0);
    CHECK(process_gone_within(read_pid(d / "hook.pid")));
    CHECK(process_gone_within(read_pid(d / "child.pid")));
  }

  TEST_CASE("a hook group that ignores SIGTERM gets SIGKILL after the grace")
  {
    TempDir d;
    const auto h = hook(d, "stubborn",
                        "trap '' TERM\n"
                        "sleep 1000 &\n"
                        "echo $! > \"$1/child.pid\"\n"
                        "while :; do sleep 1; done\n");
    ExecOptions options;
    options.kill_grace = std::chrono::milliseconds(300);
    ExecSink sink(exec_config({ h, d.path() }, 1), options);
    const auto start = std::chrono::steady_clock::now();
    const auto o = run_delivery(sink, sample_delivery());
    const double elapsed = seconds_since(start);
    CHECK(o.status == Status::retryable);
    CHECK(elapsed >= 1.3);
    CHECK(elapsed < 3.0);
    CHECK(process_gone_within(read_pid(d / "child.pid")));
  }

  TEST_CASE("a cancelled delivery (the daemon stopping) kills and reaps the hook's group")
  {
    TempDir d;
    const auto h = hook(d, "hang",
                        "sleep 1000 &\n"
                        "echo $! > \"$1/child.pid\"\n"
                        "echo $$ > \"$1/hook.pid\"\n"
                        "sleep 1000\n");
    ExecOptions options;
    options.kill_grace = std::chrono::milliseconds(500);
    ExecSink sink(exec_config({ h, d.path() }, 30), options);
    const auto start = std::chrono::steady_clock::now();
    const auto o = run_delivery(sink, sample_delivery(), std::chrono::milliseconds(500));
    CHECK(seconds_since(start) < 2.0);
    CHECK(o.status == Status::retryable);
    CHECK(o.message == "exec " + h + ": delivery cancelled; killed its process group");
    const int hook_pid = read_pid(d / "hook.pid");
    CHECK(process_gone_within(hook_pid));
    // Reaped by the sink, not left a zombie: the pid is no longer our child.
    CHECK(::waitpid(hook_pid, nullptr, WNOHANG) == -1);
    CHECK(process_gone_within(read_pid(d / "child.pid")));
  }

  TEST_CASE("an executable in a world-writable directory is rejected and not run")
  {
    TempDir d;
    const auto dir = d / "open";
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    REQUIRE(::chmod(dir.c_str(), 01777) == 0);
    const auto path = dir + "/publish";
    write_file(path, "#!/bin/sh\ntouch \"$1/ran\"\n", 0755);
    ExecSink sink(exec_config({ path, d.path() }));
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.status == Status::rejected);
    CHECK(o.message.find("directory " + dir + " is writable by group or others (mode 1777)") !=
          std::string::npos);
    CHECK_FALSE(std::filesystem::exists(d / "ran"));
  }

  TEST_CASE("the permission check runs again at each delivery")
  {
    TempDir d;
    const auto h = hook(d, "publish", "cat >/dev/null\n");
    ExecSink sink(exec_config({ h }));
    CHECK(run_delivery(sink, sample_delivery()).ok());
    REQUIRE(::chmod(h.c_str(), 0775) == 0);
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.status == Status::rejected);
    CHECK(o.message.find("executable " + h + " is writable by group or others (mode 0775)") !=
          std::string::npos);
  }

  TEST_CASE("a missing executable is rejected with its path")
  {
    TempDir d;
    ExecSink sink(exec_config({ d / "nope" }));
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.status == Status::rejected);
    CHECK(o.message.find(d / "nope") != std::string::npos);
    CHECK(o.message.find("No such file or directory") != std::string::npos);
  }

  TEST_CASE("a hook that exits without reading a large envelope still counts by its exit code")
  {
    TempDir d;
    const auto h = hook(d, "ignore", "exit 0\n");
    ExecSink sink(exec_config({ h }));
    // Larger than a pipe buffer (64 KiB): the write meets EPIPE, not SIGPIPE.
    const auto o = run_delivery(sink, sample_delivery(std::string(1 << 20, 'e')));
    CHECK(o.status == Status::ok);
  }

  TEST_CASE("a killed hook is retryable with the signal")
  {
    TempDir d;
    const auto h = hook(d, "selfkill", "kill -9 $$\n");
    ExecSink sink(exec_config({ h }));
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.status == Status::retryable);
    CHECK(o.message.find("killed by signal 9") != std::string::npos);
  }

  TEST_CASE("stderr in the log is bounded to its last bytes")
  {
    TempDir d;
    const auto h = hook(d, "chatty",
                        "cat >/dev/null\n"
                        "head -c 100000 /dev/zero | tr '\\0' 'x' >&2\n"
                        "echo ' the end' >&2\nexit 3\n");
    ExecSink sink(exec_config({ h }));
    LogCapture logs;
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.message.find("exited with code 3") != std::string::npos);
    REQUIRE(logs.lines().size() == 1);
    const auto& line = logs.lines()[0];
    CHECK(line.size() < 4096 + 200);
    CHECK(line.find("stderr: …xxx") != std::string::npos);
    CHECK(line.ends_with("x the end"));
  }
}
