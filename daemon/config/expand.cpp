#include "config/expand.hpp"

#include "config/file_checks.hpp"

#include <fmt/core.h>

#include <cstdlib>

namespace config {

namespace {

bool
is_env_name(std::string_view name)
{
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) {
    return false;
  }
  for (const char c : name) {
    const bool ok =
      (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Shorter contents are left in messages: replacing every "a" would garble them, and a
// path or URL piece that short says little.
constexpr std::size_t k_min_redacted = 4;

} // namespace

util::Result<void>
Expander::expand_one(std::string_view inner, util::WipedString& out)
{
  if (inner.starts_with("file:")) {
    util::WipedString path_buf;
    if (auto r = expand_into(inner.substr(5), false, path_buf); !r) {
      return r.error();
    }
    const std::string path(path_buf.begin(), path_buf.end());
    if (path.empty()) {
      return util::make_error("config", "${file:} needs a path");
    }
    auto cached = m_files.find(path);
    if (cached == m_files.end()) {
      // A `${file:}` holds a secret: it must not be readable by group or others, and
      // nobody but root and us may change it or its directories.
      auto content = read_secret_file(path);
      if (!content) {
        return util::make_error("config",
                                fmt::format("${{file:{}}}: {}", path, content.error().message));
      }
      if (auto t = check_trusted(path); !t) {
        return util::make_error("config", fmt::format("${{file:{}}}: {}", path, t.error().message));
      }
      util::WipedString value = std::move(*content);
      if (!value.empty() && value.back() == '\n') {
        value.pop_back();
        if (!value.empty() && value.back() == '\r') {
          value.pop_back();
        }
      }
      if (value.find('\n') != util::WipedString::npos ||
          value.find('\0') != util::WipedString::npos) {
        return util::make_error(
          "config", fmt::format("${{file:{}}}: expected one line, found several", path));
      }
      cached = m_files.emplace(path, util::SecretText(std::move(value))).first;
    }
    const auto content = cached->second.view();
    if (m_expanded_bytes + content.size() > k_max_file_expansion_bytes) {
      return util::make_error(
        "config", fmt::format("${{file:{}}}: expected the ${{file:}} values of a config to add up "
                              "to at most 1 MiB, found more",
                              path));
    }
    m_expanded_bytes += content.size();
    out.append(content.begin(), content.end());
    return {};
  }
  if (!is_env_name(inner)) {
    return util::make_error(
      "config", fmt::format("expected ${{NAME}} or ${{file:PATH}}, found \"${{{}}}\"", inner));
  }
  const std::string name(inner);
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    return util::make_error("config", fmt::format("environment variable {} is not set", name));
  }
  out.append(value);
  return {};
}

util::Result<void>
Expander::expand_into(std::string_view text, bool allow_file, util::WipedString& out)
{
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const auto close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        return util::make_error("config", "expected \"}\" to close \"${\", found end of text");
      }
      // `${file:${X}/p}` nests one env reference: find the matching brace.
      std::size_t end = close;
      const std::string_view inner_start = text.substr(i + 2);
      if (inner_start.starts_with("file:")) {
        int depth = 1;
        std::size_t j = i + 2;
        for (; j < text.size(); ++j) {
          if (text[j] == '{') {
            ++depth;
          } else if (text[j] == '}' && --depth == 0) {
            break;
          }
        }
        if (j == text.size()) {
          return util::make_error("config",
                                  "expected \"}\" to close \"${file:\", found end of text");
        }
        end = j;
      }
      const std::string_view inner = text.substr(i + 2, end - i - 2);
      if (!allow_file && inner.starts_with("file:")) {
        return util::make_error("config",
                                "expected ${NAME} inside ${file:}, found a nested ${file:}");
      }
      if (auto r = expand_one(inner, out); !r) {
        return r.error();
      }
      i = end + 1;
    } else {
      out += text[i];
      ++i;
    }
  }
  return {};
}

util::Result<util::SecretText>
Expander::expand(std::string_view text)
{
  util::WipedString out;
  if (auto r = expand_into(text, true, out); !r) {
    return r.error();
  }
  return util::SecretText(std::move(out));
}

std::string
Expander::redact(std::string message) const
{
  for (const auto& [path, content] : m_files) {
    const auto secret = content.view();
    if (secret.size() < k_min_redacted) {
      continue;
    }
    const std::string shown = fmt::format("${{file:{}}}", path);
    for (auto pos = message.find(secret); pos != std::string::npos;
         pos = message.find(secret, pos + shown.size())) {
      message.replace(pos, secret.size(), shown);
    }
  }
  return message;
}

util::Result<std::string>
expand(std::string_view text)
{
  Expander e;
  auto r = e.expand(text);
  if (!r) {
    return r.error();
  }
  return std::string(r->view());
}

bool
uses_file(std::string_view text)
{
  return text.find("${file:") != std::string_view::npos;
}

} // namespace config
