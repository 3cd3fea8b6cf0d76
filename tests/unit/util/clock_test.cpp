#include "schedule/zone.hpp"
#include "state/records.hpp"
#include "util/clock.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <type_traits>

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

// One type for a wall-clock instant (issue 14): the scheduler's and the state's are util's.
static_assert(std::is_same_v<schedule::Instant, util::Time>);
static_assert(std::is_same_v<state::Time, util::Time>);
