#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/engine.hpp"
#include "config/loader.hpp"
#include "crypto/envelope.hpp"
#include "crypto/harden.hpp"
#include "schedule/zone.hpp"
#include "state/store.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/core.h>

#include <csignal>
#include <cstdio>
#include <exception>

namespace app {

namespace {

// SLOT is USER or CONTROLLER/USER (DESIGN §4); user names compare as Jenkins does.
std::vector<const config::User*>
resolve_slots(const config::Config& config, const std::vector<std::string>& names)
{
  std::vector<const config::User*> out;
  for (const auto& name : names) {
    const auto slash = name.find('/');
    std::vector<const config::User*> matches;
    for (const auto& u : config.users) {
      const bool user_matches =
        config::fold_user_id(u.user) ==
        config::fold_user_id(slash == std::string::npos ? name : name.substr(slash + 1));
      const bool controller_matches =
        slash == std::string::npos || u.controller == name.substr(0, slash);
      if (user_matches && controller_matches) {
        matches.push_back(&u);
      }
    }
    if (matches.empty()) {
      throw util::Fatal(util::exit_code::k_usage, fmt::format("once: unknown slot: {}", name));
    }
    if (matches.size() > 1) {
      std::string where;
      for (const auto* u : matches) {
        where += (where.empty() ? "" : ", ") + u->slot();
      }
      throw util::Fatal(
        util::exit_code::k_usage,
        fmt::format("once: ambiguous slot: {} (on {}); name it CONTROLLER/USER", name, where));
    }
    out.push_back(matches[0]);
  }
  return out;
}

void
print_reports(const std::vector<SlotReport>& reports)
{
  if (reports.empty()) {
    std::fputs("nothing was due\n", stdout);
    return;
  }
  std::string text = fmt::format("{:<32} {:<10} {:>9} {:<28} {:>5}  {}\n", "SLOT", "RESULT",
                                 "OLD AGE", "NEW TOKEN", "SINKS", "PREVIOUS RETIRES AT");
  for (const auto& r : reports) {
    text += fmt::format("{:<32} {:<10} {:>9} {:<28} {:>5}  {}\n", r.slot, r.result,
                        r.old_age ? util::format_duration(*r.old_age) : "-",
                        r.new_token.empty() ? "-" : r.new_token,
                        fmt::format("{}/{}", r.sinks_ok, r.sinks_total),
                        r.previous_retires ? schedule::format_utc(*r.previous_retires) : "-");
    if (!r.message.empty() && r.result != "committed") {
      text += fmt::format("  {}: {}\n", r.slot, r.message);
    }
  }
  std::fputs(text.c_str(), stdout);
}

} // namespace

int
cmd_once(const std::vector<std::string>& args)
{
  const Args a("once", args, { "force" }, { "config" });
  auto config = config::load(a.config_path());
  if (!config) {
    std::fputs((config.error().message + "\n").c_str(), stderr);
    return util::exit_code::k_config;
  }
  if (auto level = util::log::parse_level(config->log_level)) {
    util::log::configure(
      *level, util::log::parse_format(config->log_format).value_or(util::log::Format::text));
  }
  PassOptions options;
  options.force = a.flag("force");
  options.named = resolve_slots(*config, a.positional());

  // This process holds plain tokens between mint and seal: no core dumps.
  crypto::harden_process();
  // A hook that exits early must not kill us with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);

  auto store = state::Store::open(config->state_dir, crypto::check_envelope);
  if (!store) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("once: {}", store.error().message));
  }
  boost::asio::io_context io;
  auto engine = Engine::create(io.get_executor(), *config, *store);
  if (!engine) {
    std::fputs((engine.error().message + "\n").c_str(), stderr);
    return engine.error().kind == "config" ? util::exit_code::k_config : util::exit_code::k_failure;
  }
  PassResult result;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, (*engine)->run_pass(options), [&](std::exception_ptr e, PassResult r) {
    failure = e;
    result = std::move(r);
  });
  io.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
  print_reports(result.slots);
  for (const auto& e : result.errors) {
    std::fputs(fmt::format("jenkins-token-rotator: {}\n", e).c_str(), stderr);
  }
  if (!result.errors.empty()) {
    return util::exit_code::k_failure;
  }
  for (const auto& r : result.slots) {
    if (r.result != "committed") {
      return util::exit_code::k_failure;
    }
  }
  return util::exit_code::k_ok;
}

} // namespace app
