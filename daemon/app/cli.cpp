#include "app/cli.hpp"

#include "app/commands.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

#include <cstdio>
#include <exception>
#include <functional>

namespace app {

namespace {

struct Command
{
  const char* name;
  const char* usage;
  const char* summary;
  int (*run)(const std::vector<std::string>&);
};

// Only commands that work are listed; --help prints exactly this table.
constexpr Command k_commands[] = {
  { "daemon", "daemon [-c FILE]",
    "run as a service: rotate on schedule, on signals and on the control socket", cmd_daemon },
  { "check-config", "check-config [-c FILE] [--connect]",
    "validate the config (78 on errors); --connect: probe each controller", cmd_check_config },
  { "plan", "plan [-c FILE] [--json] [--count N] [--connect|--daemon]",
    "print the next N runs (default 5) per slot; --daemon or --socket PATH: ask the daemon",
    cmd_plan },
  { "once", "once [-c FILE] [--force] [SLOT...]",
    "rotate the due (or named) slots once, prune, and exit", cmd_once },
  { "rotate", "rotate [SLOT...|--all] [--wait]",
    "have the daemon rotate now; --wait: print each result (0 if all committed)", cmd_rotate },
  { "prune", "prune [--wait]", "have the daemon prune now; --wait: print what was revoked",
    cmd_prune },
  { "reload", "reload", "have the daemon reload its config; 78 and the errors if rejected",
    cmd_reload },
  { "status", "status [--json]", "the daemon, its controllers and slots (docs/control.md)",
    cmd_status },
  { "history", "history [SLOT] [--limit N] [--json]", "the audit log, newest first", cmd_history },
  { "keygen", "keygen [--sign] --out FILE",
    "make a key pair: private key to FILE (0600), public on stdout; --sign: Ed25519 signing key",
    cmd_keygen },
  { "pubkey", "pubkey < PRIVATE", "print the public key of the private key on stdin", cmd_pubkey },
  { "decrypt", "decrypt --key FILE [--verify-key PUB] [ENVELOPE|-]",
    "print the token sealed for FILE's key; --verify-key: only if PUB signed it", cmd_decrypt },
};

void
print_help()
{
  std::string text = "Usage: jenkins-token-rotator COMMAND [OPTIONS]\n\n"
                     "Keeps the API tokens of Jenkins service users fresh.\n\nCommands:\n";
  for (const auto& c : k_commands) {
    // A usage longer than its column gets the summary on a line of its own.
    text += std::string_view(c.usage).size() > 40
              ? fmt::format("  {}\n  {:<40} {}\n", c.usage, "", c.summary)
              : fmt::format("  {:<40} {}\n", c.usage, c.summary);
  }
  text += fmt::format("\nOptions:\n  {:<40} {}\n  {:<40} {}\n", "-h, --help", "show this help",
                      "--version", "show the version");
  text += "\n-c FILE defaults to /etc/jenkins-token-rotator/config.yaml.\n"
          "rotate, prune, reload, status, history and plan --daemon talk to the running daemon:\n"
          "they read only control.socket from -c FILE, or take --socket PATH.\n"
          "Exit codes: 0 ok, 1 runtime failure, 2 usage, 69 daemon unreachable, 78 config error.\n";
  std::fputs(text.c_str(), stdout);
}

} // namespace

int
run_cli(const std::vector<std::string>& args)
{
  if (args.empty()) {
    print_help();
    return util::exit_code::k_usage;
  }
  const std::string& name = args[0];
  if (name == "-h" || name == "--help" || name == "help") {
    print_help();
    return util::exit_code::k_ok;
  }
  if (name == "--version") {
    std::fputs("jenkins-token-rotator " JTR_VERSION "\n", stdout);
    return util::exit_code::k_ok;
  }
  for (const auto& c : k_commands) {
    if (name != c.name) {
      continue;
    }
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    for (const auto& a : rest) {
      if (a == "-h" || a == "--help") {
        std::fputs(fmt::format("Usage: jenkins-token-rotator {}\n{}\n", c.usage, c.summary).c_str(),
                   stdout);
        return util::exit_code::k_ok;
      }
    }
    try {
      return c.run(rest);
    } catch (const util::Fatal& e) {
      std::fputs(fmt::format("jenkins-token-rotator: {}\n", e.what()).c_str(), stderr);
      return e.exit_code();
    } catch (const std::exception& e) {
      std::fputs(fmt::format("jenkins-token-rotator: {}: {}\n", name, e.what()).c_str(), stderr);
      return util::exit_code::k_failure;
    }
  }
  std::fputs(
    fmt::format("jenkins-token-rotator: unknown command \"{}\" (see --help)\n", name).c_str(),
    stderr);
  return util::exit_code::k_usage;
}

} // namespace app
