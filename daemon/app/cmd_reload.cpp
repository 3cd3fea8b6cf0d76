#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/control_client.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <cstdio>

namespace app {

// Waits for the daemon's verdict (usable as the unit's ExecReload). Exit codes: 0 the new
// config runs; 78 it was rejected (each error printed with FILE:LINE:COL; the daemon keeps
// the old one); 1 another failure; 69 no daemon.
int
cmd_reload(const std::vector<std::string>& args)
{
  const Args a("reload", args, {}, { "config", "socket" });
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("reload: unexpected argument \"{}\"", a.positional()[0]));
  }
  control::Request request;
  request.cmd = control::Command::reload;
  const auto answer = ask_daemon(control_socket_path(a), request, std::nullopt);
  const auto& f = answer.fields;
  if (!answer.ok) {
    const auto errors = f.find("errors");
    if (errors == f.end() || !errors->is_array()) {
      throw util::Fatal(util::exit_code::k_failure, "reload: " + answer.error);
    }
    std::string text;
    for (const auto& e : *errors) {
      text += (e.is_string() ? e.get<std::string>() : e.dump()) + "\n";
    }
    text += fmt::format("jenkins-token-rotator: reload: {}; the daemon keeps its running config\n",
                        answer.error);
    std::fputs(text.c_str(), stderr);
    return util::exit_code::k_config;
  }
  std::string text =
    fmt::format("reloaded {}: {} slot(s)\n", text_or_dash(f, "config"), text_or_dash(f, "slots"));
  for (const char* key : { "added", "removed" }) {
    if (const auto list = f.find(key); list != f.end() && list->is_array()) {
      for (const auto& slot : *list) {
        text +=
          fmt::format("  {} {}\n", key, slot.is_string() ? slot.get<std::string>() : slot.dump());
      }
    }
  }
  std::fputs(text.c_str(), stdout);
  return util::exit_code::k_ok;
}

} // namespace app
