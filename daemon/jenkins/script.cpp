#include "jenkins/script.hpp"

#include "crypto/base64.hpp"

#include <fmt/core.h>

#include <jenkins/embedded_scripts.hpp>
#include <vector>

namespace jenkins {

namespace {

constexpr std::size_t k_trace_lines = 3;
constexpr std::size_t k_trace_line_chars = 240;

std::vector<std::string_view>
split_lines(std::string_view text)
{
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    auto line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    lines.push_back(line);
    if (end == std::string_view::npos) {
      break;
    }
    text.remove_prefix(end + 1);
  }
  return lines;
}

// Functions.printThrowable writes "<class>: <message>" (or the bare class) first and
// "\tat frame" lines after; "Caused: " introduces each outer exception.
// Returns the index of the trace's first line, or lines.size() when there is no trace.
// The script's own output may come first.
std::size_t
trace_start(const std::vector<std::string_view>& lines)
{
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto line = lines[i];
    const auto colon = line.find(": ");
    const auto head = line.substr(0, colon);
    const bool throwable_name = head.find(' ') == std::string_view::npos &&
                                (head.ends_with("Exception") || head.ends_with("Error"));
    if (throwable_name || (i + 1 < lines.size() && lines[i + 1].starts_with("\tat "))) {
      return i;
    }
  }
  return lines.size();
}

// Text without control characters (UTF-8 allowed): a trace, not random bytes.
bool
is_text(std::string_view s)
{
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\r' && c != '\n') || u == 0x7f) {
      return false;
    }
  }
  return true;
}

} // namespace

util::Result<std::string>
render_script(std::string_view name, const nlohmann::json& input)
{
  for (const auto& s : embedded::k_scripts) {
    if (s.name != name) {
      continue;
    }
    const auto at = s.text.find(k_payload_placeholder);
    if (at == std::string_view::npos ||
        s.text.find(k_payload_placeholder, at + 1) != std::string_view::npos) {
      return util::make_error("internal", fmt::format("script {} must hold {} exactly once", name,
                                                      k_payload_placeholder));
    }
    std::string json;
    try {
      json = input.dump();
    } catch (const nlohmann::json::type_error&) {
      // dump() throws on a string that is not UTF-8: refuse it rather than send a
      // mangled (and so different) user or token name.
      return util::make_error("bad_input",
                              fmt::format("the input of script {} is not valid UTF-8", name));
    }
    std::string text(s.text.substr(0, at));
    // Only [A-Za-z0-9+/=] reaches the script: nothing from config, state or the network
    // is ever pasted as code (DESIGN §1.4).
    text += crypto::to_base64(json);
    text += s.text.substr(at + k_payload_placeholder.size());
    return text;
  }
  return util::make_error("internal", fmt::format("no embedded script named {}", name));
}

std::string
script_form(std::string_view script)
{
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out = "script=";
  out.reserve(out.size() + script.size() * 3 / 2);
  for (const char c : script) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '*') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += k_hex[u >> 4];
      out += k_hex[u & 15];
    }
  }
  return out;
}

boost::asio::awaitable<net::Result<net::Response>>
post_script(net::Client& client, std::string_view name, const nlohmann::json& input,
            bool idempotent, std::size_t body_limit, std::optional<net::WipedString> authorization)
{
  auto script = render_script(name, input);
  if (!script) {
    co_return net::Failure{ net::FailureKind::bad_output, 0,
                            fmt::format("{}: {}", client.name(), script.error().message) };
  }
  auto request = net::Request::post_form("scriptText", script_form(*script), idempotent);
  request.body_limit = body_limit;
  request.authorization = std::move(authorization);
  co_return co_await client.request(std::move(request));
}

net::Result<nlohmann::json>
decode_output(std::string_view output, const std::string& controller)
{
  const auto lines = split_lines(output);
  std::string_view marker_line;
  int markers = 0;
  for (const auto line : lines) {
    if (line.starts_with(k_result_marker)) {
      marker_line = line.substr(k_result_marker.size());
      ++markers;
    }
  }
  if (markers > 1) {
    return net::Failure{ net::FailureKind::bad_output, 0,
                         fmt::format("{}: the script answered {} JTR-RESULT lines, expected one",
                                     controller, markers) };
  }
  if (markers == 1) {
    const auto json_text = crypto::from_base64_text(marker_line);
    if (!json_text) {
      return net::Failure{ net::FailureKind::bad_output, 0,
                           fmt::format("{}: the JTR-RESULT line is not base64", controller) };
    }
    auto json = nlohmann::json::parse(*json_text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
      return net::Failure{ net::FailureKind::bad_output, 0,
                           fmt::format("{}: the JTR-RESULT line does not hold a JSON object",
                                       controller) };
    }
    // json converts from anything, so the value must be named explicitly.
    return net::Result<nlohmann::json>(boost::system::in_place_value, std::move(json));
  }
  const auto start = trace_start(lines);
  if (is_text(output) && start < lines.size()) {
    std::string first;
    std::size_t taken = 0;
    for (std::size_t i = start; i < lines.size(); ++i) {
      const auto line = lines[i];
      if (line.empty()) {
        continue;
      }
      if (taken == k_trace_lines) {
        break;
      }
      first += (taken == 0 ? "" : " | ");
      first += line.substr(0, k_trace_line_chars);
      ++taken;
    }
    // Jenkins answers a thrown script with 200 and a stack trace, so the status alone
    // says nothing.
    return net::Failure{ net::FailureKind::script_error, 0,
                         fmt::format("{}: the script failed: {}", controller, first) };
  }
  return net::Failure{ net::FailureKind::bad_output, 0,
                       fmt::format(
                         "{}: the script console answered {} bytes without a JTR-RESULT line",
                         controller, output.size()) };
}

} // namespace jenkins
