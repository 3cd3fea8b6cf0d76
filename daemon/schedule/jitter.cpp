#include "schedule/jitter.hpp"

namespace schedule {

std::uint64_t
stable_hash(std::string_view bytes)
{
  constexpr std::uint64_t k_fnv_offset = 0xcbf29ce484222325ULL;
  constexpr std::uint64_t k_fnv_prime = 0x100000001b3ULL;
  std::uint64_t h = k_fnv_offset;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= k_fnv_prime;
  }
  // SplitMix64's finalizer (Steele, Lea, Flood 2014).
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

Jitter
Jitter::for_slot(std::string_view slot, std::chrono::seconds span)
{
  if (span.count() <= 0) {
    return Jitter{};
  }
  const auto n = static_cast<std::uint64_t>(span.count());
  return Jitter{ span, std::chrono::seconds(static_cast<std::int64_t>(stable_hash(slot) % n)) };
}

} // namespace schedule
