#pragma once

#include "control/protocol.hpp"
#include "util/error.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace control {

// One request, one answer over the control socket, synchronously (the CLI's side).
// Error kinds: "unavailable" (no socket file, or nobody listening: ENOENT, ECONNREFUSED),
// "permission" (the socket refused us: EACCES from connect, or the server's
// "permission denied" answer), "timeout", "protocol" (an answer that is not one of ours),
// "io". `timeout` bounds the whole exchange; nullopt waits as long as the daemon works
// (`rotate --wait`).
util::Result<Answer> call(const std::string& socket_path, const Request& request,
                          std::optional<std::chrono::milliseconds> timeout);

} // namespace control
