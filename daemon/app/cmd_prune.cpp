#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/control_client.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <chrono>
#include <cstdio>

namespace app {

// Exit codes: 0 queued, or (--wait) pruned without errors; 1 otherwise; 69 no daemon.
int
cmd_prune(const std::vector<std::string>& args)
{
  const Args a("prune", args, { "wait" }, { "config", "socket" });
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("prune: unexpected argument \"{}\"", a.positional()[0]));
  }
  control::Request request;
  request.cmd = control::Command::prune;
  request.wait = a.flag("wait");
  const auto answer =
    ask_daemon(control_socket_path(a), request,
               request.wait ? std::nullopt
                            : std::optional<std::chrono::milliseconds>(std::chrono::seconds(30)));
  if (!answer.ok) {
    throw util::Fatal(util::exit_code::k_failure, "prune: " + answer.error);
  }
  if (!request.wait) {
    std::fputs("prune queued\n", stdout);
    return util::exit_code::k_ok;
  }
  std::fputs(fmt::format("revoked {} token(s)\n", text_or_dash(answer.fields, "revoked")).c_str(),
             stdout);
  const auto errors = answer.fields.find("errors");
  if (errors == answer.fields.end() || !errors->is_array() || errors->empty()) {
    return util::exit_code::k_ok;
  }
  for (const auto& e : *errors) {
    std::fputs(fmt::format("jenkins-token-rotator: prune: {}\n",
                           e.is_string() ? e.get<std::string>() : e.dump())
                 .c_str(),
               stderr);
  }
  return util::exit_code::k_failure;
}

} // namespace app
