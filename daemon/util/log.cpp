#include "util/log.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/stat.h>

namespace util::log {

namespace {

// systemd sets JOURNAL_STREAM=DEV:INO for the stream it connected to stderr; a child whose
// stderr was redirected elsewhere inherits the variable, so compare it with fd 2.
bool
stderr_is_journal()
{
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) {
    return false;
  }
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) {
    return false;
  }
  struct stat st
  {};
  if (::fstat(2, &st) != 0) {
    return false;
  }
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

struct State
{
  Level level = Level::info;
  Format format = Format::text;
  std::function<void(std::string_view)> sink;
  // Under systemd, journald stamps each line itself and reads the priority from
  // a "<N>" prefix (sd-daemon(3)), so the text format drops its own timestamp there.
  bool journal = stderr_is_journal();
};

State&
state()
{
  static State s;
  return s;
}

const char*
level_name(Level level)
{
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warning:
      return "warning";
    case Level::error:
      return "error";
  }
  return "info";
}

int
syslog_priority(Level level)
{
  switch (level) {
    case Level::debug:
      return 7;
    case Level::info:
      return 6;
    case Level::warning:
      return 4;
    case Level::error:
      return 3;
  }
  return 6;
}

std::string
timestamp()
{
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
    std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms);
}

} // namespace

std::optional<Level>
parse_level(std::string_view name)
{
  for (const auto l : { Level::debug, Level::info, Level::warning, Level::error }) {
    if (name == level_name(l)) {
      return l;
    }
  }
  return std::nullopt;
}

std::optional<Format>
parse_format(std::string_view name)
{
  if (name == "text") {
    return Format::text;
  }
  if (name == "json") {
    return Format::json;
  }
  return std::nullopt;
}

void
configure(Level level, Format format)
{
  state().level = level;
  state().format = format;
}

void
set_sink(std::function<void(std::string_view line)> sink)
{
  state().sink = std::move(sink);
}

bool
enabled(Level level)
{
  return static_cast<int>(level) >= static_cast<int>(state().level);
}

void
write(Level level, std::string_view message)
{
  auto& s = state();
  std::string line;
  if (s.format == Format::json) {
    nlohmann::json j = { { "ts", timestamp() },
                         { "level", level_name(level) },
                         { "msg", message } };
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else if (s.journal) {
    line = fmt::format("<{}>{}", syslog_priority(level), message);
  } else {
    line = fmt::format("{} {} {}", timestamp(), level_name(level), message);
  }
  if (s.sink) {
    s.sink(line);
    return;
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace util::log
