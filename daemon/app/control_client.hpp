#pragma once

#include "app/args.hpp"
#include "control/protocol.hpp"

#include <chrono>
#include <optional>
#include <string>

// What the client commands (rotate, prune, reload, status, history, plan --daemon) share:
// where the socket is, one call, and the exit codes of DESIGN §4 for a failed call.
namespace app {

// --socket PATH, else control.socket from the config (-c FILE), read alone.
// Throws util::Fatal(k_config) when the config cannot give it.
std::string control_socket_path(const Args& args);

// Sends `request` and returns the daemon's answer (ok or not). A failed exchange throws
// util::Fatal: no daemon → 69 "is the daemon running? (socket PATH)"; refused → 1
// naming the socket's group to join; timeout, I/O, garbage → 1.
control::Answer ask_daemon(const std::string& socket_path, const control::Request& request,
                           std::optional<std::chrono::milliseconds> timeout);

// A string field of a JSON value, or "-" when it is missing or null.
std::string text_or_dash(const nlohmann::json& value, const char* key);

// `text` cut to `width` bytes, with "..." at the end when cut.
std::string fit(std::string text, std::size_t width);

} // namespace app
