#include "control/protocol.hpp"

#include <fmt/core.h>

#include <array>
#include <utility>

namespace control {

namespace {

using nlohmann::json;

constexpr std::size_t k_max_echo = 64; // bytes of a peer's word repeated in an error

util::Error
protocol_error(std::string message)
{
  return util::make_error("protocol", std::move(message));
}

// A peer's word in an error answer: bounded, and only as JSON will escape it. The word
// came through the JSON lexer, so it is valid UTF-8: the cut goes back to the start of
// a character, never through one (the answer would carry U+FFFD instead).
std::string
echo(std::string_view word)
{
  if (word.size() <= k_max_echo) {
    return std::string(word);
  }
  std::size_t cut = k_max_echo;
  while (cut > 0 && (static_cast<unsigned char>(word[cut]) & 0xC0U) == 0x80U) {
    --cut;
  }
  return std::string(word.substr(0, cut)) + "…";
}

std::string
describe(const json& value)
{
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "something else";
  }
}

constexpr std::array<std::pair<std::string_view, Command>, 6> k_commands = { {
  { "status", Command::status },
  { "rotate", Command::rotate },
  { "prune", Command::prune },
  { "reload", Command::reload },
  { "history", Command::history },
  { "plan", Command::plan },
} };

// Which fields each command takes besides v and cmd: one table, read by the parser.
bool
takes(Command cmd, std::string_view field)
{
  switch (cmd) {
    case Command::status:
    case Command::reload:
      return false;
    case Command::rotate:
      return field == "slots" || field == "all" || field == "wait";
    case Command::prune:
      return field == "wait";
    case Command::history:
      return field == "slot" || field == "limit";
    case Command::plan:
      return field == "count";
  }
  return false;
}

util::Result<bool>
read_bool(const json& value, std::string_view name)
{
  if (!value.is_boolean()) {
    return protocol_error(
      fmt::format("{}: expected true or false, found {}", name, describe(value)));
  }
  return value.get<bool>();
}

util::Result<int>
read_int(const json& value, std::string_view name, int low, int high)
{
  if (value.is_number_integer()) {
    const auto n = value.get<std::int64_t>();
    if (n >= low && n <= high) {
      return static_cast<int>(n);
    }
  }
  std::string found = describe(value);
  if (value.is_number_integer()) {
    found = value.dump();
  }
  return protocol_error(
    fmt::format("{}: expected an integer from {} to {}, found {}", name, low, high, found));
}

util::Result<std::string>
read_name(const json& value, std::string_view name)
{
  if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
    return protocol_error(fmt::format("{}: expected a non-empty string, found {}", name,
                                      value.is_string() ? "an empty string" : describe(value)));
  }
  return value.get<std::string>();
}

} // namespace

std::string_view
to_string(Command command)
{
  for (const auto& [name, c] : k_commands) {
    if (c == command) {
      return name;
    }
  }
  return "?";
}

util::Result<Request>
parse_request(std::string_view line)
{
  if (line.size() > k_max_request) {
    return protocol_error(fmt::format("request over {} bytes", k_max_request));
  }
  // No exceptions: a parse error is a discarded value. The lexer rejects invalid UTF-8.
  const json doc = json::parse(line, nullptr, false);
  if (doc.is_discarded()) {
    return protocol_error("not JSON");
  }
  if (!doc.is_object()) {
    return protocol_error(fmt::format("expected a JSON object, found {}", describe(doc)));
  }
  const auto v = doc.find("v");
  if (v == doc.end()) {
    return protocol_error("missing v");
  }
  if (!v->is_number_integer()) {
    return protocol_error(fmt::format("v: expected 1, found {}", describe(*v)));
  }
  if (v->get<std::int64_t>() != k_version) {
    return protocol_error(fmt::format("unsupported v: {}", v->dump()));
  }
  const auto cmd = doc.find("cmd");
  if (cmd == doc.end()) {
    return protocol_error("missing cmd");
  }
  if (!cmd->is_string()) {
    return protocol_error(fmt::format("cmd: expected a string, found {}", describe(*cmd)));
  }
  Request request;
  const auto& cmd_name = cmd->get_ref<const std::string&>();
  bool known = false;
  for (const auto& [name, c] : k_commands) {
    if (name == cmd_name) {
      request.cmd = c;
      known = true;
    }
  }
  if (!known) {
    return protocol_error(fmt::format("unknown command: {}", echo(cmd_name)));
  }

  for (const auto& [key, value] : doc.items()) {
    if (key == "v" || key == "cmd") {
      continue;
    }
    if (!takes(request.cmd, key)) {
      return protocol_error(fmt::format("unknown field: {}", echo(key)));
    }
    if (key == "slots") {
      if (!value.is_array()) {
        return protocol_error(
          fmt::format("slots: expected an array of strings, found {}", describe(value)));
      }
      for (std::size_t i = 0; i < value.size(); ++i) {
        auto s = read_name(value[i], fmt::format("slots[{}]", i));
        if (!s) {
          return s.error();
        }
        request.slots.push_back(std::move(*s));
      }
    } else if (key == "all" || key == "wait") {
      auto b = read_bool(value, key);
      if (!b) {
        return b.error();
      }
      (key == "all" ? request.all : request.wait) = *b;
    } else if (key == "slot") {
      auto s = read_name(value, key);
      if (!s) {
        return s.error();
      }
      request.slot = std::move(*s);
    } else if (key == "limit") {
      auto n = read_int(value, key, 1, 1000);
      if (!n) {
        return n.error();
      }
      request.limit = *n;
    } else if (key == "count") {
      auto n = read_int(value, key, 1, 100);
      if (!n) {
        return n.error();
      }
      request.count = *n;
    }
  }
  if (request.cmd == Command::rotate) {
    if (request.all && !request.slots.empty()) {
      return protocol_error("rotate: expected slots or all, not both");
    }
    if (!request.all && request.slots.empty()) {
      return protocol_error("rotate: expected slots (a non-empty array) or all: true");
    }
  }
  return request;
}

std::string
format_request(const Request& request)
{
  // Built by hand so the fields keep a readable order (v and cmd first).
  std::string out = fmt::format(R"({{"v":{},"cmd":"{}")", k_version, to_string(request.cmd));
  const auto add = [&out](std::string_view key, const json& value) {
    out +=
      fmt::format(R"(,"{}":{})", key, value.dump(-1, ' ', false, json::error_handler_t::replace));
  };
  switch (request.cmd) {
    case Command::status:
    case Command::reload:
      break;
    case Command::rotate:
      if (request.all) {
        add("all", true);
      } else {
        add("slots", request.slots);
      }
      add("wait", request.wait);
      break;
    case Command::prune:
      add("wait", request.wait);
      break;
    case Command::history:
      if (request.slot) {
        add("slot", *request.slot);
      }
      add("limit", request.limit);
      break;
    case Command::plan:
      add("count", request.count);
      break;
  }
  out += "}\n";
  return out;
}

std::string
format_answer(const Answer& answer)
{
  constexpr auto k_replace = json::error_handler_t::replace;
  std::string out = fmt::format(R"({{"v":{},"ok":{})", k_version, answer.ok ? "true" : "false");
  if (!answer.ok) {
    out += R"(,"error":)" + json(answer.error).dump(-1, ' ', false, k_replace);
  }
  if (answer.fields.is_object()) {
    for (const auto& [key, value] : answer.fields.items()) {
      if (key == "v" || key == "ok" || key == "error") {
        continue;
      }
      out += "," + json(key).dump(-1, ' ', false, k_replace) + ":" +
             value.dump(-1, ' ', false, k_replace);
    }
  }
  out += "}\n";
  return out;
}

Answer
error_answer(std::string message)
{
  Answer a;
  a.ok = false;
  a.error = std::move(message);
  return a;
}

util::Result<Answer>
parse_answer(std::string_view line)
{
  json doc = json::parse(line, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return protocol_error("the daemon's answer is not a JSON object");
  }
  const auto v = doc.find("v");
  if (v == doc.end() || !v->is_number_integer() || v->get<std::int64_t>() != k_version) {
    return protocol_error(
      fmt::format("the daemon's answer is not version {} of the protocol", k_version));
  }
  const auto ok = doc.find("ok");
  if (ok == doc.end() || !ok->is_boolean()) {
    return protocol_error("the daemon's answer has no ok");
  }
  Answer answer;
  answer.ok = ok->get<bool>();
  if (const auto e = doc.find("error"); e != doc.end() && e->is_string()) {
    answer.error = e->get<std::string>();
  } else if (!answer.ok) {
    answer.error = "(no error message)";
  }
  doc.erase("v");
  doc.erase("ok");
  doc.erase("error");
  answer.fields = std::move(doc);
  return answer;
}

} // namespace control
