#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/control_client.hpp"
#include "app/status_table.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <chrono>
#include <cstdio>

namespace app {

// The audit log, newest first (never a secret): a table, or --json the answer's fields.
int
cmd_history(const std::vector<std::string>& args)
{
  const Args a("history", args, { "json" }, { "config", "socket", "limit" });
  if (a.positional().size() > 1) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("history: unexpected argument \"{}\"", a.positional()[1]));
  }
  control::Request request;
  request.cmd = control::Command::history;
  if (!a.positional().empty()) {
    request.slot = a.positional()[0];
  }
  if (const auto limit = a.option("limit")) {
    const bool digits = !limit->empty() && limit->size() <= 4 &&
                        limit->find_first_not_of("0123456789") == std::string::npos;
    request.limit = digits ? std::stoi(*limit) : 0;
    if (request.limit < 1 || request.limit > 1000) {
      throw util::Fatal(
        util::exit_code::k_usage,
        fmt::format("history: --limit: expected a number from 1 to 1000, found \"{}\"", *limit));
    }
  }
  const auto answer = ask_daemon(control_socket_path(a), request, std::chrono::seconds(30));
  if (!answer.ok) {
    const bool bad_slot =
      answer.error.starts_with("unknown slot") || answer.error.starts_with("ambiguous slot");
    throw util::Fatal(bad_slot ? util::exit_code::k_usage : util::exit_code::k_failure,
                      "history: " + answer.error);
  }
  if (a.flag("json")) {
    std::fputs(
      (answer.fields.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n").c_str(),
      stdout);
    return util::exit_code::k_ok;
  }
  std::string text =
    fmt::format("{:<16} {:<24} {:>6} {:<14} {}\n", "TIME (UTC)", "SLOT", "SEQ", "EVENT", "DETAIL");
  const auto events = answer.fields.find("events");
  if (events != answer.fields.end() && events->is_array()) {
    for (const auto& e : *events) {
      text += fit(fmt::format("{:<16} {:<24} {:>6} {:<14} {}",
                              short_time(e.is_object() ? e.value("time", nlohmann::json())
                                                       : nlohmann::json()),
                              fit(text_or_dash(e, "slot"), 24), text_or_dash(e, "seq"),
                              fit(text_or_dash(e, "event"), 14), text_or_dash(e, "detail")),
                  k_status_width) +
              "\n";
    }
  }
  std::fputs(text.c_str(), stdout);
  return util::exit_code::k_ok;
}

} // namespace app
