#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// systemd's side of the daemon (sd_notify(3), sd_watchdog_enabled(3)), through libsystemd;
// control::Server adopts a LISTEN_FDS socket itself. Every call is a no-op when NOTIFY_SOCKET is
// not set.
namespace service::systemd {

void ready(std::string_view status);
void status(std::string_view status);
// RELOADING=1 with MONOTONIC_USEC (systemd 253's reload protocol; older ones ignore it).
void reloading();
void stopping();
void watchdog();

// Half of WATCHDOG_USEC when systemd asks for pings from this process; nullopt otherwise.
std::optional<std::chrono::microseconds> watchdog_interval();

} // namespace service::systemd
