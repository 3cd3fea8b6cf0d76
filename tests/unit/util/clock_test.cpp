#include "util/clock.hpp"

#include <doctest/doctest.h>

#include <cstdlib>

TEST_SUITE("util::Clock")
{
  TEST_CASE("the system clock reads the wall clock in whole seconds")
  {
    const auto before = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    const auto now = util::system_clock().now();
    const auto after = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
#if !defined(JTR_CRASH_POINTS)
    CHECK(now >= before);
    CHECK(now <= after);
#else
    if (std::getenv("JTR_CLOCK_FILE") == nullptr) {
      CHECK(now >= before);
      CHECK(now <= after);
    }
#endif
  }

  TEST_CASE("a manual clock moves only when told")
  {
    util::ManualClock clock(util::Time{ std::chrono::seconds{ 1'000'000 } });
    CHECK(clock.now().time_since_epoch().count() == 1'000'000);
    clock.advance(std::chrono::seconds{ 61 });
    CHECK(clock.now().time_since_epoch().count() == 1'000'061);
    clock.set(util::Time{ std::chrono::seconds{ 5 } });
    CHECK(clock.now().time_since_epoch().count() == 5);
  }
}
