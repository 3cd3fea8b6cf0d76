#include "crypto/sodium.hpp"

#include <sodium.h>

namespace crypto {

util::Result<void>
init_sodium()
{
  // A function-local static is initialised exactly once even under concurrent first calls
  // (C++11 [stmt.dcl]/4); sodium_init() itself answers 1 on later calls.
  static const int k_status = sodium_init();
  if (k_status < 0) {
    return util::make_error("crypto", "libsodium failed to initialise (no source of randomness)");
  }
  return {};
}

} // namespace crypto
