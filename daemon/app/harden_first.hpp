#pragma once

#include <string_view>

namespace app {

// Every command that will hold a secret (an admin token, a plain Jenkins token) calls
// this before it reads the config: no core dump, no same-uid ptrace (crypto::harden_process).
// Fails closed: throws util::Fatal(k_failure) naming `command` when hardening fails.
void harden_first(std::string_view command);

} // namespace app
