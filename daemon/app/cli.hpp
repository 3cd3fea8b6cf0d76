#pragma once

#include <string>
#include <vector>

namespace app {

// Parses argv, runs one command and returns the process exit code (DESIGN §4).
// util::Fatal thrown by a command becomes its exit code and one line on stderr.
int run_cli(const std::vector<std::string>& args);

} // namespace app
