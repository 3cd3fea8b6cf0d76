#include "service/systemd.hpp"

#include "util/log.hpp"

#include <fmt/core.h>

#include <ctime>
#include <systemd/sd-daemon.h>

namespace service::systemd {

namespace {

void
notify(const std::string& text)
{
  if (const int r = sd_notify(0, text.c_str()); r < 0) {
    util::log::warning("systemd: notify failed: {}", fmt::format("errno {}", -r));
  }
}

} // namespace

void
ready(std::string_view status)
{
  notify(fmt::format("READY=1\nSTATUS={}", status));
}

void
status(std::string_view status)
{
  notify(fmt::format("STATUS={}", status));
}

void
reloading()
{
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
                    static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  notify(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec));
}

void
stopping()
{
  notify("STOPPING=1");
}

void
watchdog()
{
  notify("WATCHDOG=1");
}

std::optional<std::chrono::microseconds>
watchdog_interval()
{
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(usec / 2));
}

} // namespace service::systemd
