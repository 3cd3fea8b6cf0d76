#pragma once

#include "util/error.hpp"

namespace crypto {

// Initialises libsodium once per process; safe to call from any thread, any number of
// times. Fails only when libsodium cannot get randomness (no /dev/urandom, no getrandom).
util::Result<void> init_sodium();

} // namespace crypto
