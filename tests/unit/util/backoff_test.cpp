#include "util/backoff.hpp"

#include <doctest/doctest.h>

using std::chrono::milliseconds;

TEST_SUITE("util::full_jitter_delay")
{
  TEST_CASE("the n-th delay stays within min(max, initial * 2^(n-1)) and uses the whole range")
  {
    std::mt19937_64 rng(42);
    for (int attempt = 1; attempt <= 40; ++attempt) {
      const auto cap =
        std::min<std::int64_t>(60000, attempt - 1 < 30 ? 100LL << (attempt - 1) : 60000);
      std::int64_t highest = 0;
      for (int i = 0; i < 200; ++i) {
        const auto d =
          util::full_jitter_delay(milliseconds(100), milliseconds(60000), attempt, rng);
        CHECK(d.count() >= 0);
        CHECK(d.count() <= cap);
        highest = std::max(highest, d.count());
      }
      CHECK(highest > cap / 2); // full jitter: not a fixed delay
    }
  }

  TEST_CASE("a zero max means no wait")
  {
    std::mt19937_64 rng(1);
    CHECK(util::full_jitter_delay(milliseconds(0), milliseconds(0), 3, rng) == milliseconds(0));
  }
}
