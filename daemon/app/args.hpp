#pragma once

#include <optional>
#include <string>
#include <vector>

namespace app {

// A small option parser for subcommands: `--flag`, `--opt VALUE`, `-c FILE`,
// `--opt=VALUE`, and positional arguments. Unknown options are usage errors.
class Args
{
public:
  // `flags` take no value; `options` take one. Throws util::Fatal(k_usage) on misuse.
  Args(const std::string& command, const std::vector<std::string>& args,
       const std::vector<std::string>& flags, const std::vector<std::string>& options);

  [[nodiscard]] bool flag(const std::string& name) const;
  [[nodiscard]] std::optional<std::string> option(const std::string& name) const;
  [[nodiscard]] const std::vector<std::string>& positional() const { return m_positional; }
  // -c/--config, else the default config path.
  [[nodiscard]] std::string config_path() const;

private:
  std::vector<std::string> m_flags;
  std::vector<std::pair<std::string, std::string>> m_options;
  std::vector<std::string> m_positional;
};

constexpr const char* k_default_config = "/etc/jenkins-token-rotator/config.yaml";

} // namespace app
