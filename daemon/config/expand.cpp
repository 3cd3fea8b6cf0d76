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

util::Result<std::string> expand_env_only(std::string_view text);

util::Result<std::string>
expand_one(std::string_view inner)
{
  if (inner.starts_with("file:")) {
    auto path = expand_env_only(inner.substr(5));
    if (!path) {
      return path.error();
    }
    if (path->empty()) {
      return util::make_error("config", "${file:} needs a path");
    }
    // A `${file:}` holds a secret: it must not be readable by group or others.
    auto content = read_secret_file(*path);
    if (!content) {
      return util::make_error("config",
                              fmt::format("${{file:{}}}: {}", *path, content.error().message));
    }
    std::string value = std::move(*content);
    if (!value.empty() && value.back() == '\n') {
      value.pop_back();
      if (!value.empty() && value.back() == '\r') {
        value.pop_back();
      }
    }
    if (value.find('\n') != std::string::npos || value.find('\0') != std::string::npos) {
      return util::make_error("config",
                              fmt::format("${{file:{}}}: expected one line, found several", *path));
    }
    return value;
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
  return std::string(value);
}

util::Result<std::string>
expand_impl(std::string_view text, bool allow_file)
{
  std::string out;
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
      auto value = expand_one(inner);
      if (!value) {
        return value.error();
      }
      out += *value;
      i = end + 1;
    } else {
      out += text[i];
      ++i;
    }
  }
  return out;
}

util::Result<std::string>
expand_env_only(std::string_view text)
{
  return expand_impl(text, false);
}

} // namespace

util::Result<std::string>
expand(std::string_view text)
{
  return expand_impl(text, true);
}

} // namespace config
