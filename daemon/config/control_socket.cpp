#include "config/control_socket.hpp"

#include "config/config.hpp"
#include "config/expand.hpp"
#include "config/file_checks.hpp"
#include "config/yaml_tree.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>

namespace config {

namespace {

// The same bound as the full loader: far beyond a real config.

util::Error
error_at(const std::string& file, YamlMark mark, const std::string& message, int line_offset = 0)
{
  return util::make_error("config", fmt::format("{}:{}:{}: {}", file, mark.line + line_offset + 1,
                                                mark.column + 1, message));
}

// The lines of the top-level `control:` block alone, and the line it starts on, so a
// syntax error elsewhere (a config being edited before `reload`) does not hide the socket.
std::optional<std::pair<std::string, int>>
control_block(std::string_view text)
{
  std::string block;
  int first = -1;
  int number = 0;
  bool inside = false;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const bool top_level = !line.empty() && line[0] != ' ' && line[0] != '\t' && line[0] != '#';
    if (top_level) {
      inside = line.starts_with("control:");
      if (inside && first < 0) {
        first = number;
      } else if (inside) {
        return std::nullopt; // twice: let the full parse speak
      }
    }
    if (inside) {
      block.append(line).append("\n");
    }
    ++number;
  }
  if (first < 0) {
    return std::nullopt;
  }
  return std::pair{ std::move(block), first };
}

} // namespace

util::Result<std::string>
read_control_socket(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return util::make_error(
      "config", fmt::format("{}: cannot read the config: {}; name the socket with --socket PATH",
                            path, std::strerror(errno)));
  }
  std::string text;
  text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (text.size() > k_max_config_file_bytes) {
    return util::make_error("config", fmt::format("{}: expected a config of at most 64 MiB", path));
  }
  int line_offset = 0;
  auto tree = YamlTree::parse(text);
  if (!tree) {
    const auto syntax_error = [&] {
      const auto& e = tree.error();
      return error_at(path, e.mark.is_null() ? YamlMark{ 0, 0 } : e.mark,
                      "expected valid YAML, found an error: " + e.message);
    };
    const auto block = control_block(text);
    if (!block) {
      return syntax_error();
    }
    auto alone = YamlTree::parse(block->first);
    if (!alone) {
      return syntax_error();
    }
    tree = std::move(alone);
    line_offset = block->second;
  }
  const std::string fallback = Config{}.control_socket;
  if (tree->document_count() == 0) {
    return fallback;
  }
  const YamlNode root = tree->document(0);
  if (!root.is_map()) {
    return fallback; // the daemon names this error; the client only needs the socket
  }
  const YamlNode control = root["control"];
  if (!control.is_defined() || control.is_null()) {
    return fallback;
  }
  if (!control.is_map()) {
    return error_at(path, control.mark(), "control: expected a mapping", line_offset);
  }
  const YamlNode socket = control["socket"];
  if (!socket.is_defined()) {
    return fallback;
  }
  if (!socket.is_scalar() || socket.scalar().empty()) {
    return error_at(path, socket.mark(), "control.socket: expected a path", line_offset);
  }
  auto value = expand(socket.scalar());
  if (!value) {
    return error_at(path, socket.mark(), "control.socket: " + value.error().message, line_offset);
  }
  if ((*value)[0] != '/') {
    const auto slash = path.rfind('/');
    *value = (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/" + *value;
  }
  return *value;
}

} // namespace config
