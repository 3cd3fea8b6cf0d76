#pragma once

#include "util/error.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

// The control protocol, version 1 (DESIGN §7, docs/control.md): one JSON object per line
// each way. Pure functions: no sockets here, so the parser can be unit-tested and fuzzed.
namespace control {

constexpr int k_version = 1;
// A request line (without its '\n') is at most this long; answers have no limit.
constexpr std::size_t k_max_request = 64 * 1024;

enum class Command
{
  status,
  rotate,
  prune,
  reload,
  history,
  plan
};

std::string_view to_string(Command command);

struct Request
{
  Command cmd = Command::status;
  std::vector<std::string> slots;  // rotate: "USER" or "CONTROLLER/USER" as the operator typed them
  bool all = false;                // rotate
  bool wait = false;               // rotate, prune (reload always waits)
  std::optional<std::string> slot; // history
  int limit = 50;                  // history (1..1000)
  int count = 5;                   // plan (1..100)

  bool operator==(const Request&) const = default;
};

// Parses one request line (without the '\n'). The error (kind "protocol") names the
// problem: "not JSON", "missing v", "unsupported v: 2", "unknown command: x",
// "unknown field: y", "slots: expected an array of strings", "request over 65536 bytes", ...
util::Result<Request> parse_request(std::string_view line);

// The request line a client sends for `request` (with the '\n'); parse_request reads it back.
std::string format_request(const Request& request);

struct Answer
{
  bool ok = true;
  nlohmann::json fields = nlohmann::json::object(); // merged into the answer object
  std::string error;                                // when !ok
};

// {"v":1,"ok":...,"error":...,<fields>}\n: one line whatever the fields hold (invalid UTF-8
// is replaced, not thrown on). Fields named v, ok or error are ignored.
std::string format_answer(const Answer& answer);

// An error answer: {"v":1,"ok":false,"error":message}.
Answer error_answer(std::string message);

// Reads one answer line (without the '\n'), as the client does. Errors (kind "protocol"):
// not JSON, not an object, a missing or unsupported v, a missing ok.
util::Result<Answer> parse_answer(std::string_view line);

// Who is on the other end of a connection (SO_PEERCRED).
struct Peer
{
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

} // namespace control
