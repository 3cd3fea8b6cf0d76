#pragma once

#include <fmt/core.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

// Logging to stderr. Callers never pass secrets: a plain token never reaches a
// std::string, so it cannot reach a log line by accident (DESIGN §1.5).
namespace util::log {

enum class Level
{
  debug,
  info,
  warning,
  error
};
enum class Format
{
  text,
  json
};

std::optional<Level> parse_level(std::string_view name);
std::optional<Format> parse_format(std::string_view name);

void configure(Level level, Format format);

// Replaces stderr as the destination (tests capture lines this way); an empty
// function restores stderr.
void set_sink(std::function<void(std::string_view line)> sink);

bool enabled(Level level);
void write(Level level, std::string_view message);

template<typename... Args>
void
debug(fmt::format_string<Args...> f, Args&&... args)
{
  if (enabled(Level::debug)) {
    write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
  }
}

template<typename... Args>
void
info(fmt::format_string<Args...> f, Args&&... args)
{
  if (enabled(Level::info)) {
    write(Level::info, fmt::format(f, std::forward<Args>(args)...));
  }
}

template<typename... Args>
void
warning(fmt::format_string<Args...> f, Args&&... args)
{
  if (enabled(Level::warning)) {
    write(Level::warning, fmt::format(f, std::forward<Args>(args)...));
  }
}

template<typename... Args>
void
error(fmt::format_string<Args...> f, Args&&... args)
{
  if (enabled(Level::error)) {
    write(Level::error, fmt::format(f, std::forward<Args>(args)...));
  }
}

} // namespace util::log
