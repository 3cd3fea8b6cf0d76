#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace util {

// The wait before the n-th retry (n ≥ 1) with exponential backoff and full jitter
// (DESIGN §1.7): uniform in [0, min(max, initial × 2^(n-1))]. Shared by every retry
// loop (HTTP requests, sink deliveries) so they all follow the `retry:` config alike.
inline std::chrono::milliseconds
full_jitter_delay(std::chrono::milliseconds initial, std::chrono::milliseconds max, int attempt,
                  std::mt19937_64& rng)
{
  std::int64_t cap = max.count();
  if (attempt >= 1 && attempt - 1 < 30) {
    cap = std::min<std::int64_t>(cap, initial.count() << (attempt - 1));
  }
  if (cap <= 0) {
    return std::chrono::milliseconds(0);
  }
  std::uniform_int_distribution<std::int64_t> pick(0, cap);
  return std::chrono::milliseconds(pick(rng));
}

} // namespace util
