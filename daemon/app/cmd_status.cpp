#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/control_client.hpp"
#include "app/status_table.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <chrono>
#include <cstdio>

namespace app {

// The daemon's view of itself, its controllers and its slots: a table (100 columns) or,
// with --json, the answer's fields as documented in docs/control.md.
int
cmd_status(const std::vector<std::string>& args)
{
  const Args a("status", args, { "json" }, { "config", "socket" });
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("status: unexpected argument \"{}\"", a.positional()[0]));
  }
  const auto answer =
    ask_daemon(control_socket_path(a), control::Request{}, std::chrono::seconds(30));
  if (!answer.ok) {
    throw util::Fatal(util::exit_code::k_failure, "status: " + answer.error);
  }
  const std::string text =
    a.flag("json")
      ? answer.fields.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"
      : render_status(answer.fields);
  std::fputs(text.c_str(), stdout);
  return util::exit_code::k_ok;
}

} // namespace app
