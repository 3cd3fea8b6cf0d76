#include "app/args.hpp"

#include "util/error.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace app {

Args::Args(const std::string& command, const std::vector<std::string>& args,
           const std::vector<std::string>& flags, const std::vector<std::string>& options)
{
  const auto usage = [&](const std::string& what) {
    return util::Fatal(util::exit_code::k_usage,
                       fmt::format("{}: {} (see jenkins-token-rotator --help)", command, what));
  };
  bool only_positional = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (only_positional || a.size() < 2 || a[0] != '-') {
      m_positional.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    if (a == "-c") {
      a = "--config";
    }
    std::optional<std::string> inline_value;
    if (const auto eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
      inline_value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    const std::string name = a.starts_with("--") ? a.substr(2) : a.substr(1);
    if (std::find(flags.begin(), flags.end(), name) != flags.end()) {
      if (inline_value) {
        throw usage(fmt::format("option --{} takes no value", name));
      }
      m_flags.push_back(name);
    } else if (std::find(options.begin(), options.end(), name) != options.end()) {
      if (inline_value) {
        m_options.emplace_back(name, *inline_value);
      } else if (i + 1 < args.size()) {
        m_options.emplace_back(name, args[++i]);
      } else {
        throw usage(fmt::format("option --{} needs a value", name));
      }
    } else {
      throw usage(fmt::format("unknown option {}", args[i]));
    }
  }
}

bool
Args::flag(const std::string& name) const
{
  return std::find(m_flags.begin(), m_flags.end(), name) != m_flags.end();
}

std::optional<std::string>
Args::option(const std::string& name) const
{
  std::optional<std::string> value;
  for (const auto& [k, v] : m_options) {
    if (k == name) {
      value = v;
    }
  }
  return value;
}

std::string
Args::config_path() const
{
  return option("config").value_or(k_default_config);
}

} // namespace app
