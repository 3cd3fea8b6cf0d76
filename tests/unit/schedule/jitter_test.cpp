#include "schedule/jitter.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

using schedule::Jitter;
using namespace std::chrono_literals;

TEST_SUITE("schedule::Jitter")
{
  TEST_CASE("the hash is FNV-1a 64 with the SplitMix64 finalizer, fixed values")
  {
    // Computed independently (Python, tests/integration/plan_json_test.py has the same
    // definition); a change here changes every slot's run time on upgrade.
    CHECK(schedule::stable_hash("") == 0xf52a15e9a9b5e89bULL);
    CHECK(schedule::stable_hash("ci/svc-deploy") == 0xffa64115f065b1c9ULL);
  }

  TEST_CASE("offsets are fixed per slot and inside the span")
  {
    CHECK(Jitter::for_slot("ci/svc-deploy", 30min).offset == std::chrono::seconds(521));
    CHECK(Jitter::for_slot("ci/svc-deploy", 0s).offset == 0s);
    CHECK(Jitter::for_slot("ci/svc-deploy", 0s).span == 0s);
    std::set<long> seen;
    for (int i = 0; i < 1000; ++i) {
      const auto j = Jitter::for_slot("ci/user-" + std::to_string(i), 30min);
      CHECK(j.offset >= 0s);
      CHECK(j.offset < 30min);
      seen.insert(static_cast<long>(j.offset.count()));
    }
    // 1000 slots over 1800 seconds: a working hash spreads them (~ 760 distinct).
    CHECK(seen.size() > 600);
  }
}
