#include "config/reader.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace config {

namespace {

// An error costs far more than a visit (a formatted message): aliases that repeat
// a mistake must hit the budget as fast as aliases that repeat valid nodes.
constexpr std::size_t k_error_weight = 10;

} // namespace

std::string
describe(const YamlNode& node)
{
  switch (node.type()) {
    case YamlType::null:
      return "nothing";
    case YamlType::sequence:
      return "a sequence";
    case YamlType::map:
      return "a mapping";
    case YamlType::scalar: {
      std::string s(node.scalar());
      if (s.size() > 60) {
        s = s.substr(0, 57) + "...";
      }
      std::string quoted = "\"";
      for (const char c : s) {
        if (c == '"' || c == '\\') {
          quoted += '\\';
          quoted += c;
        } else if (c == '\n') {
          quoted += "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20) {
          quoted += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          quoted += c;
        }
      }
      return quoted + "\"";
    }
    case YamlType::undefined:
      break;
  }
  return "nothing";
}

std::string
join(const std::vector<std::string>& items, std::string_view sep)
{
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) {
      out += sep;
    }
    out += i;
  }
  return out;
}

std::string
KeyPath::str() const
{
  std::string out = m_parent == nullptr ? std::string() : m_parent->str();
  if (m_is_index) {
    out += fmt::format("[{}]", m_index);
  } else {
    if (!out.empty()) {
      out += '.';
    }
    out += m_name;
  }
  return out;
}

Mark
Reader::mark(const YamlNode& node) const
{
  const auto m = node.mark();
  if (m.is_null()) {
    return Mark{ m_mark_file, 1, 1 };
  }
  return Mark{ m_mark_file, m.line + 1, m.column + 1 };
}

void
Reader::error(const YamlNode& node, const KeyPath& path, const std::string& message)
{
  m_diag.add(mark(node), path.str(), m_expander.redact(message));
  m_visits += k_error_weight;
  visit();
}

bool
Reader::map_keys(const YamlNode& node, const KeyPath& path, std::size_t count,
                 const std::function<std::string_view(std::size_t)>& name_of,
                 const std::function<void(std::size_t, const YamlNode&, const KeyPath&)>& each)
{
  visit();
  if (!node.is_map()) {
    error(node, path.empty() ? "(root)" : path, "expected a mapping, found " + describe(node));
    return false;
  }
  // Bit i: key i of the table was seen (a section has at most a few dozen keys).
  std::uint64_t seen = 0;
  for (const auto& kv : node.entries()) {
    visit();
    const YamlNode& key = kv.first;
    const KeyPath child_path = path.child(key.scalar());
    if (!key.is_scalar()) {
      error(key, path.empty() ? "(root)" : path, "expected a key, found " + describe(key));
      continue;
    }
    std::size_t found = 0;
    while (found < count && name_of(found) != key.scalar()) {
      ++found;
    }
    if (found == count) {
      std::vector<std::string> names;
      for (std::size_t i = 0; i < count; ++i) {
        names.emplace_back(name_of(i));
      }
      error(
        key, child_path,
        fmt::format("expected a known key ({}), found unknown key {}", join(names), describe(key)));
      continue;
    }
    const auto bit = std::uint64_t{ 1 } << found;
    if ((seen & bit) != 0) {
      error(key, child_path, "expected each key once, found it again");
      continue;
    }
    seen |= bit;
    each(found, kv.second, child_path);
  }
  return true;
}

std::optional<std::string>
Reader::string(const YamlNode& node, const KeyPath& path)
{
  visit();
  if (!node.is_scalar() || node.scalar().empty()) {
    error(node, path, "expected a string, found " + describe(node));
    return std::nullopt;
  }
  return std::string(node.scalar());
}

util::Result<std::string>
Reader::expand(std::string_view text)
{
  auto r = m_expander.expand(text);
  if (!r) {
    return r.error();
  }
  return std::string(r->view());
}

std::optional<util::SecretText>
Reader::expanded_secret(const YamlNode& node, const KeyPath& path)
{
  auto raw = string(node, path);
  if (!raw) {
    return std::nullopt;
  }
  auto value = m_expander.expand(*raw);
  if (!value) {
    error(node, path, value.error().message);
    return std::nullopt;
  }
  return std::move(*value);
}

std::optional<std::string>
Reader::expanded(const YamlNode& node, const KeyPath& path)
{
  auto raw = string(node, path);
  if (!raw) {
    return std::nullopt;
  }
  auto value = expand(*raw);
  if (!value) {
    error(node, path, value.error().message);
    return std::nullopt;
  }
  return std::move(*value);
}

std::string
Reader::directory() const
{
  const auto slash = m_file.rfind('/');
  return slash == std::string::npos ? "." : m_file.substr(0, slash);
}

std::optional<std::string>
Reader::path(const YamlNode& node, const KeyPath& key_path)
{
  auto value = expanded(node, key_path);
  if (!value) {
    return std::nullopt;
  }
  if (!value->empty() && (*value)[0] != '/') {
    *value = directory() + "/" + *value;
  }
  return value;
}

std::optional<util::Seconds>
Reader::duration(const YamlNode& node, const KeyPath& path)
{
  visit();
  if (!node.is_scalar() || node.scalar().empty()) {
    error(node, path,
          "expected a duration such as 90s, 15m, 24h, 7d or 1h30m, found " + describe(node));
    return std::nullopt;
  }
  auto d = util::parse_duration(node.scalar());
  if (!d) {
    error(node, path, d.error().message + ", found " + describe(node));
    return std::nullopt;
  }
  return *d;
}

std::optional<int>
Reader::integer(const YamlNode& node, const KeyPath& path, int min, int max)
{
  visit();
  const auto bad = [&] {
    error(node, path,
          fmt::format("expected an integer from {} to {}, found {}", min, max, describe(node)));
    return std::nullopt;
  };
  if (!node.is_scalar()) {
    return bad();
  }
  const std::string s(node.scalar());
  if (s.empty() || s.size() > 9 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad();
  }
  const int v = std::stoi(s);
  if (v < min || v > max) {
    return bad();
  }
  return v;
}

std::optional<bool>
Reader::boolean(const YamlNode& node, const KeyPath& path)
{
  visit();
  if (node.is_scalar() && (node.scalar() == "true" || node.scalar() == "false")) {
    return node.scalar() == "true";
  }
  error(node, path, "expected true or false, found " + describe(node));
  return std::nullopt;
}

std::optional<std::string>
Reader::choice(const YamlNode& node, const KeyPath& path,
               std::initializer_list<std::string_view> options)
{
  visit();
  if (node.is_scalar() &&
      std::find(options.begin(), options.end(), node.scalar()) != options.end()) {
    return std::string(node.scalar());
  }
  std::vector<std::string> names(options.begin(), options.end());
  error(node, path,
        fmt::format("expected one of {}, found {}", join(names, " | "), describe(node)));
  return std::nullopt;
}

bool
Reader::sequence(const YamlNode& node, const KeyPath& path,
                 const std::function<void(std::size_t index, const YamlNode& item)>& each)
{
  visit();
  if (!node.is_sequence()) {
    error(node, path, "expected a sequence, found " + describe(node));
    return false;
  }
  std::size_t i = 0;
  for (const auto item : node.items()) {
    visit();
    each(i, item);
    ++i;
  }
  return true;
}

} // namespace config
