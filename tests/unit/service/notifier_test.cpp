#include "service/notifier.hpp"
#include "sinks/test_support.hpp"
#include "state/store.hpp"
#include "state/support.hpp"

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

// The notifier against a real exec target (a shell hook appending each event to a file),
// so the events are checked as a target receives them.

using namespace std::chrono_literals;

namespace {

using service::Time;

struct NotifierRig
{
  sinks::test::TempDir dir;
  boost::asio::io_context ioc;
  util::ManualClock clock{ Time{ std::chrono::seconds{ 1'800'000'000 } } };
  std::string out = dir / "events.jsonl";

  config::Sink target() const
  {
    const auto hook = dir / "hook";
    sinks::test::write_file(
      hook,
      "#!/bin/sh\n{ cat; echo; } >> \"$1\"\n"
      "printf '%s %s\\n' \"$JTR_TOKEN_NAME\" \"$JTR_CONTROLLER\" >> \"$1.env\"\n",
      0755);
    config::Sink s;
    s.type = config::SinkType::exec;
    s.command = { hook, out };
    s.timeout = 10s;
    return s;
  }

  std::shared_ptr<service::Notifier> make(state::Store* store = nullptr)
  {
    service::Notifier::Options o;
    o.targets = { target() };
    o.retry.attempts = 2;
    o.retry.initial = 0s;
    o.store = store;
    o.clock = &clock;
    return service::Notifier::create(ioc.get_executor(), o).value();
  }

  // Runs the io loop until every event was delivered.
  void drain(service::Notifier& n)
  {
    for (int i = 0; i < 500 && n.pending() > 0; ++i) {
      ioc.run_for(20ms);
      ioc.restart();
    }
    REQUIRE(n.pending() == 0);
  }

  std::vector<nlohmann::json> events() const
  {
    std::vector<nlohmann::json> got;
    std::istringstream in(sinks::test::read_file(out));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) {
        got.push_back(nlohmann::json::parse(line));
      }
    }
    return got;
  }
};

rotation::SlotReport
report(rotation::SlotResult result, rotation::FailureKind failure = rotation::FailureKind::none)
{
  rotation::SlotReport r;
  r.controller = "ci";
  r.user = "svc-a";
  r.result = result;
  r.failure = failure;
  if (failure != rotation::FailureKind::none) {
    r.message = "ci: the mint script threw: java.lang.IllegalStateException";
  }
  if (result == rotation::SlotResult::committed) {
    r.new_token = "rotator-5f2a9c1e-000042";
  }
  return r;
}

std::shared_ptr<config::Config>
one_slot_config()
{
  auto c = std::make_shared<config::Config>();
  config::User u;
  u.controller = "ci";
  u.user = "svc-a";
  u.policy.failure_budget = 2 * 86400s;
  c->users.push_back(u);
  return c;
}

} // namespace

TEST_SUITE("service::Notifier")
{
  TEST_CASE("three failed passes send one failure event, and the next commit one recovery")
  {
    NotifierRig rig;
    auto n = rig.make();
    n->configure(one_slot_config());
    for (int i = 0; i < 3; ++i) {
      n->on_slot(report(rotation::SlotResult::failed, rotation::FailureKind::script_error));
      rig.clock.advance(10min);
      rig.drain(*n);
    }
    n->on_slot(report(rotation::SlotResult::not_due));
    n->on_slot(report(rotation::SlotResult::committed));
    n->on_slot(report(rotation::SlotResult::committed)); // no streak: nothing
    rig.drain(*n);

    auto got = rig.events();
    REQUIRE(got.size() == 2);
    CHECK(got[0]["format"] == "jenkins-token-rotator/event/v1");
    CHECK(got[0]["event"] == "slot_failed");
    CHECK(got[0]["slot"] == "ci/svc-a");
    CHECK(got[0]["controller"] == "ci");
    CHECK(got[0]["user"] == "svc-a");
    CHECK(got[0]["failure"] == "script_error");
    CHECK(got[0]["result"] == "failed");
    CHECK(got[0]["time"] == "2027-01-15T08:00:00Z");
    CHECK(got[0]["id"].get<std::string>().size() == 16);
    CHECK(got[1]["event"] == "slot_recovered");
    CHECK(got[1]["failed_passes"] == 3);
    CHECK(got[1]["failing_since"] == "2027-01-15T08:00:00Z");
    CHECK(got[1]["new_token"] == "rotator-5f2a9c1e-000042");
    CHECK(got[0]["id"] != got[1]["id"]);
    // Exec targets see the event type and controller in the JTR_* variables.
    CHECK(sinks::test::read_file(rig.out + ".env") == "slot_failed ci\nslot_recovered ci\n");
  }

  TEST_CASE("a stopped pass is no failure; a controller error is, once per streak")
  {
    NotifierRig rig;
    auto n = rig.make();
    n->configure(one_slot_config());
    n->on_slot(report(rotation::SlotResult::error, rotation::FailureKind::stopped));
    n->on_slot(report(rotation::SlotResult::delivering, rotation::FailureKind::sink_retryable));
    rig.drain(*n);
    CHECK(rig.events().empty());
    n->on_slot(report(rotation::SlotResult::error, rotation::FailureKind::network));
    n->on_slot(report(rotation::SlotResult::error, rotation::FailureKind::network));
    rig.drain(*n);
    REQUIRE(rig.events().size() == 1);
    CHECK(rig.events()[0]["failure"] == "network");
  }

  TEST_CASE("a stale database is told once per streak, a rejected reload each time")
  {
    NotifierRig rig;
    auto n = rig.make();
    n->on_controller("ci", true, true);
    n->on_controller("ci", true, true);
    n->on_controller("ci", true, false);
    n->on_controller("ci", true, true);
    n->reload_failed("/etc/jtr/config.yaml",
                     { "/etc/jtr/config.yaml:3:5: users[0].lifetime: expected a duration" });
    rig.drain(*n);
    auto got = rig.events();
    REQUIRE(got.size() == 3);
    CHECK(got[0]["event"] == "database_stale");
    CHECK(got[0]["controller"] == "ci");
    CHECK_FALSE(got[0].contains("user"));
    CHECK(got[1]["event"] == "database_stale");
    CHECK(got[2]["event"] == "reload_failed");
    CHECK(got[2]["config"] == "/etc/jtr/config.yaml");
    CHECK(got[2]["errors"].size() == 1);
  }

  TEST_CASE("a current token within its failure budget is told once")
  {
    NotifierRig rig;
    state_test::TempDir sdir;
    auto store = state::Store::open(sdir.path(),
                                    [](std::string_view, std::string_view,
                                       std::string_view) -> util::Result<void> { return {}; })
                   .value();
    const auto t0 = rig.clock.now() - 28 * 24h; // lifetime 30 d: 2 d left, = the budget
    auto a = store.ensure_slot("ci", "svc-a", "svc-a").value();
    auto seq = store.next_seq().value();
    REQUIRE_OK(store.create_attempt(seq, a, "rotator-x-000001", t0));
    const nlohmann::json env = { { "format", "jenkins-token-rotator/v1" },
                                 { "token_name", "rotator-x-000001" },
                                 { "token_uuid", "u-1" },
                                 { "sealed", { { { "ciphertext", "c2VhbGVk" } } } } };
    const std::vector<state::Envelope> envs{ { 0, "h", env.dump() } };
    REQUIRE_OK(store.mark_minted(seq, { "u-1", t0, t0 + 30 * 24h, std::nullopt }, envs, t0));
    REQUIRE_OK(store.mark_verified(seq, t0));
    REQUIRE_OK(store.record_sink_result(seq, 0, state::SinkOutcome::ok, "", t0));
    REQUIRE_OK(store.commit_attempt(seq, t0, 24h));

    auto n = rig.make(&store);
    n->configure(one_slot_config());
    n->on_pass({}, {}); // exactly the budget left: not yet
    rig.drain(*n);
    CHECK(rig.events().empty());
    rig.clock.advance(1h);
    n->on_pass({}, {});
    n->on_pass({}, {});
    rig.drain(*n);
    auto got = rig.events();
    REQUIRE(got.size() == 1);
    CHECK(got[0]["event"] == "token_expiring");
    CHECK(got[0]["slot"] == "ci/svc-a");
    CHECK(got[0]["token_name"] == "rotator-x-000001");
    CHECK(got[0]["expires_in_s"] == 47 * 3600);
    CHECK(got[0]["failure_budget_s"] == 2 * 86400);
    CHECK(got[0]["jenkins_expires"].is_null());
  }

  TEST_CASE("a file target is refused: notifications go to exec or http")
  {
    boost::asio::io_context ioc;
    service::Notifier::Options o;
    config::Sink f;
    f.type = config::SinkType::file;
    f.path = "/tmp/x";
    f.mark = { "config.yaml", 40, 5 };
    o.targets = { f };
    auto n = service::Notifier::create(ioc.get_executor(), o);
    REQUIRE_FALSE(n.has_value());
    CHECK(n.error().message.find("config.yaml:40:5: notify") != std::string::npos);
  }
}
