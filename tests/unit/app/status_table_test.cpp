#include "app/status_table.hpp"

#include <doctest/doctest.h>

#include <sstream>
#include <string>

namespace {

// A status answer as docs/control.md describes it, with values long enough to overflow.
nlohmann::json
sample()
{
  return nlohmann::json::parse(R"json({
    "daemon": {"version": "0.1.0", "pid": 4242, "uptime_s": 93784,
               "config": "/etc/jenkins-token-rotator/config.yaml",
               "config_loaded": "2026-12-06T11:30:00Z",
               "last_reload": {"ok": false, "at": "2026-12-06T11:40:00Z",
                               "errors": ["/etc/jenkins-token-rotator/config.yaml:14:5: users[2].lifetime: expected a duration such as 90s, 15m, 24h, 7d or 1h30m, found \"forever and ever and ever\""]},
               "passes_running": ["ci"]},
    "controllers": [
      {"name": "ci", "url": "https://jenkins.example.com/", "reachable": true,
       "version": "2.462.3", "capabilities": ["expiring_mint", "helpers", "usage_stats"],
       "last_error": null, "clock_skew_s": -3, "stale_database": false},
      {"name": "a-controller-with-a-very-long-name", "url": "https://old.example.com/",
       "reachable": false, "version": null, "capabilities": [],
       "last_error": "connect: Connection refused (after 5 tries over 4m12s, the circuit is open until 2026-12-06T12:00:00Z)",
       "clock_skew_s": null, "stale_database": true}],
    "slots": [
      {"slot": "ci/svc-a", "controller": "ci", "user": "svc-a", "configured": true,
       "state": "ok", "current_token": "rotator-5f2a9c1e-000042-abcdef", "token_age_s": 3600,
       "expires": "2027-01-05T11:30:00Z", "jenkins_expires": "2027-01-06T00:00:00Z",
       "next_run": "2026-12-13T03:00:00Z", "last_rotation": "2026-12-06T10:30:00Z",
       "last_result": "committed", "last_error": null, "consecutive_failures": 0,
       "backoff_until": null, "previous_retires": "2026-12-07T10:30:00Z"},
      {"slot": "a-controller-with-a-very-long-name/a-service-user-with-a-long-name",
       "controller": "a-controller-with-a-very-long-name", "user": "a-service-user-with-a-long-name",
       "configured": true, "state": "backoff", "current_token": null, "token_age_s": null,
       "expires": null, "jenkins_expires": null, "next_run": null, "last_rotation": null,
       "last_result": "failed", "last_error": "mint: the user does not exist in the security realm; Jenkins answered 500 with a long stack trace that goes on",
       "consecutive_failures": 12, "backoff_until": "2026-12-06T17:30:00Z", "previous_retires": null},
      {"slot": "ci/old-user", "controller": "ci", "user": "old-user", "configured": false,
       "state": "unconfigured", "current_token": "rotator-5f2a9c1e-000007", "token_age_s": 864000,
       "expires": "2026-12-20T00:00:00Z", "jenkins_expires": null, "next_run": null,
       "last_rotation": "2026-11-26T00:00:00Z", "last_result": "committed", "last_error": null,
       "consecutive_failures": 0, "backoff_until": null, "previous_retires": null}]
})json");
}

} // namespace

TEST_SUITE("app::render_status")
{
  TEST_CASE("every line fits 100 columns and every fact is shown")
  {
    const auto text = app::render_status(sample());
    std::istringstream lines(text);
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) {
      CHECK_MESSAGE(line.size() <= app::k_status_width, line);
      ++count;
    }
    CHECK(count > 12);
    for (const char* fact : { "daemon 0.1.0 (pid 4242), up 1d2h3m4s",
                              "config /etc/jenkins-token-rotator/config.yaml",
                              "last reload: rejected at 2026-12-06 11:40 UTC (1 errors)",
                              "/etc/jenkins-token-rotator/config.yaml:14:5: users[2].lifetime",
                              "passes running: ci",
                              "2.462.3",
                              "-3s",
                              "expiring_mint,helpers,usage_stats",
                              "the database is stale",
                              "connect: Connection refused",
                              "ci/svc-a",
                              "committed",
                              "2026-12-06 10:30",
                              "2026-12-13 03:00",
                              "token rotator-5f2a9c1e-000042-abcdef",
                              "expires 2027-01-05 11:30 (Jenkins: 2027-01-06 00:00)",
                              "previous retires 2026-12-07 10:30",
                              "backoff until 2026-12-06 17:30",
                              "last error: mint: the user does not exist",
                              "unconfigured",
                              "ci/old-user" }) {
      CHECK_MESSAGE(text.find(fact) != std::string::npos, std::string(fact));
    }
  }

  TEST_CASE("an answer with missing fields still renders")
  {
    const auto text = app::render_status(nlohmann::json::object());
    CHECK(text.find("daemon - (pid -)") != std::string::npos);
    CHECK(text.find("SLOT") != std::string::npos);
    CHECK_NOTHROW(app::render_status(nlohmann::json::array()));
    CHECK_NOTHROW(app::render_status(nlohmann::json::parse(R"({"slots":[1,"x",null]})")));
  }

  TEST_CASE("times are shortened only when they are RFC 3339 UTC")
  {
    CHECK(app::short_time("2026-12-06T11:30:00Z") == "2026-12-06 11:30");
    CHECK(app::short_time("2026-12-06T11:30:00+09:00") == "2026-12-06T11:30:00+09:00");
    CHECK(app::short_time(nullptr) == "-");
  }
}
