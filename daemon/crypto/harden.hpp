#pragma once

#include "util/error.hpp"

namespace crypto {

// Keeps plain secrets out of core dumps and away from same-uid ptrace: RLIMIT_CORE 0 and
// prctl(PR_SET_DUMPABLE, 0). Every process that will hold a plain token calls it first:
// `decrypt` and `keygen` do; the daemon must call it at startup, before the first mint
// (and so before any SecretBytes holds a token). Errors name the call that failed.
util::Result<void> harden_process();

} // namespace crypto
