#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace schedule {

// A slot's fixed jitter: `offset` in [0, span), the same on every machine and restart.
struct Jitter
{
  std::chrono::seconds span{ 0 };
  std::chrono::seconds offset{ 0 };

  // offset = stable_hash(slot) mod span, where `slot` is "controller/user" as configured.
  static Jitter for_slot(std::string_view slot, std::chrono::seconds span);
};

// A stable 64-bit hash: FNV-1a 64 over the bytes, then the SplitMix64 finalizer
// (FNV-1a alone leaves its low bits weakly mixed, and the offset is taken modulo).
// Fixed by this definition: the same on every machine, build and restart.
std::uint64_t stable_hash(std::string_view bytes);

} // namespace schedule
