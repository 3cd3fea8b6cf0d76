#pragma once

#include <string>
#include <vector>

// One function per subcommand; each gets the arguments after its name and returns
// the exit code. Usage errors throw util::Fatal(exit_code::k_usage, …).
namespace app {

int cmd_check_config(const std::vector<std::string>& args);
int cmd_keygen(const std::vector<std::string>& args);
int cmd_pubkey(const std::vector<std::string>& args);
int cmd_decrypt(const std::vector<std::string>& args);
int cmd_plan(const std::vector<std::string>& args);
int cmd_once(const std::vector<std::string>& args);
int cmd_daemon(const std::vector<std::string>& args);
// Client commands: they talk to the running daemon over the control socket.
int cmd_rotate(const std::vector<std::string>& args);
int cmd_prune(const std::vector<std::string>& args);
int cmd_reload(const std::vector<std::string>& args);
int cmd_status(const std::vector<std::string>& args);
int cmd_history(const std::vector<std::string>& args);

} // namespace app
