#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/control_client.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <chrono>
#include <cstdio>

namespace app {

namespace {

// Without --wait the daemon only queues: it answers at once.
constexpr std::chrono::seconds k_queue_timeout{ 30 };

// One line per slot, as `once` prints its reports.
void
print_results(const nlohmann::json& results)
{
  std::string text =
    fmt::format("{:<32} {:<10} {:<28} {:>5}\n", "SLOT", "RESULT", "NEW TOKEN", "SINKS");
  for (const auto& r : results) {
    const std::string slot = text_or_dash(r, "slot");
    const std::string result = text_or_dash(r, "result");
    text += fmt::format(
      "{:<32} {:<10} {:<28} {:>5}\n", slot, result, text_or_dash(r, "new_token"),
      fmt::format("{}/{}", text_or_dash(r, "sinks_ok"), text_or_dash(r, "sinks_total")));
    if (const std::string message = text_or_dash(r, "message");
        message != "-" && !message.empty() && result != "committed") {
      text += fmt::format("  {}: {}\n", slot, message);
    }
  }
  std::fputs(text.c_str(), stdout);
}

} // namespace

// Exit codes: 0 queued, or (--wait) every slot committed; 1 a slot did not commit or the
// daemon refused; 2 usage, and an unknown or ambiguous SLOT (as `once`); 69 no daemon.
int
cmd_rotate(const std::vector<std::string>& args)
{
  const Args a("rotate", args, { "all", "wait" }, { "config", "socket" });
  control::Request request;
  request.cmd = control::Command::rotate;
  request.all = a.flag("all");
  request.wait = a.flag("wait");
  request.slots = a.positional();
  if (request.all == !request.slots.empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      "rotate: name the slots (USER or CONTROLLER/USER) or pass --all");
  }
  const auto path = control_socket_path(a);
  const auto answer = ask_daemon(
    path, request,
    request.wait ? std::nullopt : std::optional<std::chrono::milliseconds>(k_queue_timeout));
  if (const auto results = answer.fields.find("results");
      results != answer.fields.end() && results->is_array()) {
    print_results(*results);
  }
  if (!answer.ok) {
    const bool bad_slot =
      answer.error.starts_with("unknown slot") || answer.error.starts_with("ambiguous slot");
    throw util::Fatal(bad_slot ? util::exit_code::k_usage : util::exit_code::k_failure,
                      "rotate: " + answer.error);
  }
  if (const auto queued = answer.fields.find("queued");
      queued != answer.fields.end() && queued->is_array()) {
    std::string text;
    for (const auto& slot : *queued) {
      text += "queued " + (slot.is_string() ? slot.get<std::string>() : slot.dump()) + "\n";
    }
    std::fputs(text.empty() ? "nothing queued\n" : text.c_str(), stdout);
  }
  return util::exit_code::k_ok;
}

} // namespace app
