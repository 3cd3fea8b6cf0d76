#include "fake_rotator.hpp"
#include "service/daemon.hpp"
#include "state/support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <doctest/doctest.h>

#include <algorithm>

using namespace std::chrono_literals;
namespace asio = boost::asio;
using service_test::FakeRotator;
using service_test::FakeWorld;

namespace {

const service::Time k_now{ std::chrono::seconds(1'800'000'000) };

std::shared_ptr<const config::Config>
two_lanes()
{
  auto c = std::make_shared<config::Config>();
  c->path = "/nonexistent/config.yaml";
  c->catch_up_spread = 0s;
  for (const char* name : { "ok", "down" }) {
    config::Controller ctl;
    ctl.name = name;
    ctl.url = "http://127.0.0.1:1/";
    c->controllers.push_back(ctl);
  }
  for (const char* u : { "a", "b" }) {
    config::User user;
    user.user = u;
    user.controller = "ok";
    c->users.push_back(user);
  }
  config::User away;
  away.user = "c";
  away.controller = "down";
  c->users.push_back(away);
  return c;
}

struct Fixture
{
  state_test::TempDir dir;
  state::Store store;
  asio::io_context io;
  FakeWorld world;
  util::ManualClock clock{ k_now };
  std::unique_ptr<service::Daemon> daemon;

  Fixture()
    : store(open(dir))
  {
    world.table = { { "ok/a", "ok", "a", k_now + 3600s },
                    { "ok/b", "ok", "b", k_now + 7200s },
                    { "down/c", "down", "c", k_now + 3600s } };
    service::DaemonOptions o;
    o.config = two_lanes();
    o.store = &store;
    o.clock = &clock;
    o.max_sleep = 1s;
    o.handle_signals = false;
    o.load = [](const std::string&) { return util::Result<config::Config>(*two_lanes()); };
    o.make_rotator = [this](std::shared_ptr<const config::Config>) {
      return util::Result<std::unique_ptr<service::Rotator>>(
        std::make_unique<FakeRotator>(io.get_executor(), world));
    };
    daemon = std::make_unique<service::Daemon>(io, std::move(o));
  }

  static state::Store open(const state_test::TempDir& d)
  {
    auto s = state::Store::open(d.path());
    REQUIRE_OK(s);
    return std::move(*s);
  }

  std::size_t passes_naming(const std::string& slot) const
  {
    return static_cast<std::size_t>(
      std::count_if(world.requests.begin(), world.requests.end(), [&](const auto& r) {
        return std::find(r.slots.begin(), r.slots.end(), slot) != r.slots.end() ||
               std::find(r.if_due.begin(), r.if_due.end(), slot) != r.if_due.end();
      }));
  }
};

} // namespace

TEST_SUITE("service::Daemon")
{
  TEST_CASE("the first pass of each lane resumes; a slow lane never holds up another")
  {
    Fixture f;
    f.world.lane_delay["down"] = 5s;
    REQUIRE_OK(f.daemon->start());
    std::optional<rotation::PassResult> got;
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<std::string> slots = { "ok/a" };
    auto request = [&]() -> asio::awaitable<void> {
      got = co_await f.daemon->rotate(slots, false, true);
    };
    asio::co_spawn(f.io, request, asio::detached);
    while (!got && std::chrono::steady_clock::now() - t0 < 3s) {
      f.io.run_one_for(100ms);
    }
    REQUIRE(got);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    REQUIRE(got->slots.size() == 1);
    CHECK(got->slots[0].slot() == "ok/a");
    CHECK(got->slots[0].result == rotation::SlotResult::committed);
    // Lane ok: resume, then the rotation; lane down still in its resume pass.
    REQUIRE(f.world.requests.size() == 3);
    CHECK(f.world.requests[0].slots.empty());
    CHECK(f.world.requests[0].kind == rotation::PassKind::rotate);
    CHECK(std::find(f.world.finished.begin(), f.world.finished.end(), "down") ==
          f.world.finished.end());
  }

  TEST_CASE("requests merge: a queued slot is queued once, one in flight waits for it")
  {
    Fixture f;
    f.world.lane_delay["ok"] = 300ms;
    REQUIRE_OK(f.daemon->start());
    int answered = 0;
    auto ask = [&](std::vector<std::string> slots) {
      asio::co_spawn(
        f.io,
        [&, slots]() -> asio::awaitable<void> {
          auto r = co_await f.daemon->rotate(slots, false, true);
          for (const auto& s : r.slots) {
            CHECK(s.result == rotation::SlotResult::committed);
          }
          ++answered;
        },
        asio::detached);
    };
    ask({ "ok/a" });     // queued behind the resume pass
    ask({ "ok/a" });     // merged into the same pending pass
    f.io.run_for(400ms); // the resume pass returns, the rotation starts
    ask({ "ok/a" });     // in flight: waits for that attempt
    f.io.run_for(600ms);
    CHECK(answered == 3);
    CHECK(f.passes_naming("ok/a") == 1);
  }

  TEST_CASE("the scheduler rotates a slot when the clock reaches it, and no sooner")
  {
    Fixture f;
    REQUIRE_OK(f.daemon->start());
    f.io.run_for(1500ms);
    CHECK(f.passes_naming("ok/a") == 0);
    f.clock.advance(3601s);
    f.io.run_for(1500ms); // max_sleep is 1 s here (60 s in the daemon)
    CHECK(f.passes_naming("ok/a") == 1);
    CHECK(f.passes_naming("down/c") == 1);
    CHECK(f.passes_naming("ok/b") == 0);
    // It stays due in the fake (its table does not move): held, not retried at once.
    f.io.run_for(1500ms);
    CHECK(f.passes_naming("ok/a") == 1);
  }

  TEST_CASE("a slot the scheduler queued while another pass rotated it is not rotated again")
  {
    // The reload's full pass rotates ok/a, which fell due; the scheduler, seeing it due in
    // the table it read before that commit, queues it too. The queued ask is "if still due",
    // evaluated when its pass runs: one rotation, not two.
    Fixture f;
    f.world.clock = &f.clock;
    f.world.period = 7 * 24h;
    f.world.lane_delay["ok"] = 300ms;
    REQUIRE_OK(f.daemon->start());
    f.io.run_for(500ms); // the resume passes return
    CHECK(f.world.rotations.empty());
    f.clock.advance(3601s); // ok/a and down/c fall due
    std::optional<service::ReloadVerdict> verdict;
    asio::co_spawn(
      f.io, [&]() -> asio::awaitable<void> { verdict = co_await f.daemon->reload(); },
      asio::detached);
    f.io.run_for(2500ms);
    REQUIRE(verdict);
    CHECK(verdict->ok);
    CHECK(f.world.rotations["ok/a"] == 1);
    CHECK(f.world.rotations["down/c"] == 1);
    CHECK(f.world.rotations.count("ok/b") == 0);
    // The scheduler did queue ok/a (if still due) after or beside the full pass.
    CHECK(f.passes_naming("ok/a") >= 1);
  }

  TEST_CASE("stop asks the running passes to stop and ends once they returned")
  {
    Fixture f;
    f.world.lane_delay["down"] = 60s;
    REQUIRE_OK(f.daemon->start());
    f.io.run_for(200ms);
    f.daemon->stop();
    f.daemon->stop(); // a second stop changes nothing
    const auto t0 = std::chrono::steady_clock::now();
    f.io.run_for(5s); // returns at once when the daemon stops the loop
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    CHECK(f.daemon->finished());
    CHECK(f.world.stop_requests == 1);
  }
}
