// The control protocol's pure half (daemon/control/protocol) on an arbitrary line, as the
// daemon reads a client's request and the client reads the daemon's answer:
// control::parse_request, format_request, format_answer, error_answer and parse_answer.
// Input: the whole buffer is one line (without its '\n'); no layout.
// Oracles: no crash or exception; a request that parses formats to one line that parses
// back to the same request; a refused request's error message is valid UTF-8 and a few
// hundred bytes at most, whatever the line held; its error answer, with the line's JSON
// object (if it is one) as the answer's fields, is one line that parse_answer reads back
// to the same ok, error and fields (v, ok and error left out); parse_answer on the raw
// line never throws.
#include "control/protocol.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

// One '\n', at the end: the protocol is one JSON object per line.
bool
one_line(const std::string& s)
{
  return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1;
}

bool
valid_utf8(const std::string& s)
{
  try {
    (void)nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view line(reinterpret_cast<const char*>(data), size);

  const auto request = control::parse_request(line);
  std::string message;
  if (request) {
    const auto formatted = control::format_request(*request);
    if (!one_line(formatted)) {
      std::abort();
    }
    const auto back =
      control::parse_request(std::string_view(formatted).substr(0, formatted.size() - 1));
    if (!back || !(*back == *request)) {
      std::abort();
    }
    message = "accepted";
  } else {
    message = request.error().message;
    // Words of the peer are echoed bounded (64 bytes) and cut on a character boundary.
    if (request.error().kind != "protocol" || message.empty() || message.size() > 256 ||
        !valid_utf8(message)) {
      std::abort();
    }
  }

  // The daemon's answer to it, carrying the line's object (if any) as fields.
  auto answer = control::error_answer(message);
  answer.ok = request.has_value();
  const auto doc = nlohmann::json::parse(line, nullptr, false);
  if (!doc.is_discarded() && doc.is_object()) {
    answer.fields = doc;
  }
  const auto encoded = control::format_answer(answer);
  if (!one_line(encoded)) {
    std::abort();
  }
  const auto decoded =
    control::parse_answer(std::string_view(encoded).substr(0, encoded.size() - 1));
  if (!decoded || decoded->ok != answer.ok) {
    std::abort();
  }
  if (!answer.ok && decoded->error != message) {
    std::abort();
  }
  auto expected = answer.fields;
  expected.erase("v");
  expected.erase("ok");
  expected.erase("error");
  if (decoded->fields != expected) {
    std::abort();
  }

  // The client's side: any line from the socket.
  (void)control::parse_answer(line);
  return 0;
}
