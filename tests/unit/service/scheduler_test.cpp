#include "schedule/jitter.hpp"
#include "service/scheduler.hpp"
#include "service/time_support.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace std::chrono_literals;
using service::Time;

namespace {

using test::at;

} // namespace

TEST_SUITE("service::scheduler")
{
  TEST_CASE("never sleeps longer than a minute, never negative")
  {
    const auto now = at(1'000'000);
    CHECK(service::sleep_for(now, std::nullopt) == 60s);
    CHECK(service::sleep_for(now, now + 7 * 86400s) == 60s);
    CHECK(service::sleep_for(now, now + 5s) == 5s);
    CHECK(service::sleep_for(now, now - 100s) == 0s);
    CHECK(service::sleep_for(now, now + 5s, 2s) == 2s);
  }

  TEST_CASE("a slot due after the epoch runs when it is due")
  {
    const auto epoch = at(1'000'000);
    CHECK(service::run_at("ci/a", epoch + 30s, epoch, 600s) == epoch + 30s);
    CHECK(service::run_at("ci/a", epoch, epoch, 600s) == epoch);
  }

  TEST_CASE("overdue slots spread over catch_up_spread, each at a fixed point")
  {
    const auto epoch = at(1'000'000);
    std::set<long long> offsets;
    for (int i = 0; i < 200; ++i) {
      const auto slot = "ci/svc-" + std::to_string(i);
      const auto t = service::run_at(slot, epoch - 3 * 86400s, epoch, 600s);
      CHECK(t >= epoch);
      CHECK(t < epoch + 600s);
      // Deterministic: how overdue it is does not matter, nor how often we ask.
      CHECK(service::run_at(slot, epoch - 1s, epoch, 600s) == t);
      offsets.insert((t - epoch).count());
    }
    // Spread, not a herd: 200 slots over 600 s land on many different seconds.
    CHECK(offsets.size() > 120);
    // No spread configured: all at once, at the epoch.
    CHECK(service::run_at("ci/a", epoch - 86400s, epoch, 0s) == epoch);
  }

  TEST_CASE("the spread hash is fixed by its definition")
  {
    CHECK(schedule::stable_hash("") == schedule::stable_hash(""));
    CHECK(schedule::stable_hash("ci/a") != schedule::stable_hash("ci/b"));
    CHECK(schedule::stable_hash("ci/a") != schedule::stable_hash("cj/a"));
  }

  TEST_CASE("a hold pushes a slot out, never in")
  {
    const auto epoch = at(1'000'000);
    CHECK(service::run_at("ci/a", epoch + 10s, epoch, 0s, epoch + 60s) == epoch + 60s);
    CHECK(service::run_at("ci/a", epoch + 90s, epoch, 0s, epoch + 60s) == epoch + 90s);
  }

  TEST_CASE("a clock jump forward is the wall clock outrunning the steady clock")
  {
    CHECK_FALSE(service::clock_jumped_forward(60s, 60s));
    CHECK_FALSE(service::clock_jumped_forward(61s, 60s));
    CHECK(service::clock_jumped_forward(3600s, 60s));
    CHECK_FALSE(service::clock_jumped_forward(-3600s, 60s)); // a step back is no downtime
  }

  TEST_CASE("plan_wake groups the due slots by lane and finds the next instant")
  {
    const auto now = at(2'000'000);
    const auto epoch = now - 3600s; // started an hour ago
    const std::vector<service::SlotDue> table = {
      { "ci/a", "ci", "a", now - 10s },  // due
      { "ci/b", "ci", "b", now + 300s }, // later
      { "qa/c", "qa", "c", now },        // due
      { "qa/d", "qa", "d", now - 5s },   // due but held
      { "qa/e", "qa", "e", now + 100s }, // the next one
    };
    const std::map<std::string, Time> holds = { { "qa/d", now + 50s } };
    const auto w = service::plan_wake(table, now, epoch, 600s, holds);
    REQUIRE(w.due.size() == 2);
    CHECK(w.due.at("ci") == std::vector<std::string>{ "ci/a" });
    CHECK(w.due.at("qa") == std::vector<std::string>{ "qa/c" });
    REQUIRE(w.next.has_value());
    CHECK(*w.next == now + 50s);
  }

  TEST_CASE("after downtime, plan_wake releases overdue slots over the spread")
  {
    const auto epoch = at(3'000'000); // the daemon just started
    std::vector<service::SlotDue> table;
    for (int i = 0; i < 100; ++i) {
      table.push_back({ "ci/u" + std::to_string(i), "ci", "u", epoch - 86400s });
    }
    std::size_t released = 0;
    std::size_t first = 0;
    for (int s = 0; s <= 600; s += 60) {
      const auto w = service::plan_wake(table, epoch + std::chrono::seconds(s), epoch, 600s, {});
      const auto n = w.due.count("ci") ? w.due.at("ci").size() : 0;
      if (s == 0) {
        first = n;
      }
      CHECK(n >= released);
      released = n;
    }
    CHECK(first < 30);      // not a herd at the start
    CHECK(released == 100); // all of them within the spread
  }
}
