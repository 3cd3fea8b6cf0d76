#include "app/args.hpp"
#include "app/commands.hpp"
#include "config/loader.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <cstdio>

namespace app {

int
cmd_check_config(const std::vector<std::string>& args)
{
  const Args a("check-config", args, {}, { "config" });
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("check-config: unexpected argument \"{}\"", a.positional()[0]));
  }
  const auto path = a.config_path();
  auto config = config::load(path);
  if (!config) {
    std::fputs((config.error().message + "\n").c_str(), stderr);
    return util::exit_code::k_config;
  }
  std::size_t sinks = 0;
  for (const auto& u : config->users) {
    sinks += u.sinks.size();
  }
  std::fputs(fmt::format("{}: OK: {} controller{}, {} recipient{}, {} user{}, {} sink{}\n", path,
                         config->controllers.size(), config->controllers.size() == 1 ? "" : "s",
                         config->recipients.size(), config->recipients.size() == 1 ? "" : "s",
                         config->users.size(), config->users.size() == 1 ? "" : "s", sinks,
                         sinks == 1 ? "" : "s")
               .c_str(),
             stdout);
  return util::exit_code::k_ok;
}

} // namespace app
