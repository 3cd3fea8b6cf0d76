#include "config/config.hpp"
#include "service/metrics.hpp"
#include "service/time_support.hpp"
#include "state/store.hpp"
#include "state/support.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

using test::at;

using service::Time;

std::shared_ptr<config::Config>
config_with(const std::vector<std::pair<std::string, std::string>>& slots)
{
  auto c = std::make_shared<config::Config>();
  std::set<std::string> controllers;
  for (const auto& [controller, user] : slots) {
    if (controllers.insert(controller).second) {
      config::Controller cc;
      cc.name = controller;
      cc.url = "http://127.0.0.1:1/";
      c->controllers.push_back(cc);
    }
    config::User u;
    u.controller = controller;
    u.user = user;
    u.policy.failure_budget = 2 * 86400s;
    c->users.push_back(u);
  }
  return c;
}

// The lines of one family's samples, "name{labels} value".
std::vector<std::string>
samples_of(const std::string& text, const std::string& family)
{
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(family + "{", 0) == 0 || line.rfind(family + " ", 0) == 0) {
      out.push_back(line);
    }
  }
  return out;
}

bool
has_line(const std::string& text, const std::string& line)
{
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

// Checks the structure the text format 0.0.4 asks for: each family's HELP then TYPE once,
// its samples right after, none elsewhere, no sample twice. Returns the family names.
std::vector<std::string>
check_exposition(const std::string& text)
{
  std::vector<std::string> families;
  std::set<std::string> seen_families;
  std::set<std::string> seen_series;
  std::string current;
  std::string type;
  std::istringstream in(text);
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  for (std::string line; std::getline(in, line);) {
    REQUIRE_MESSAGE(!line.empty(), "empty line in exposition");
    if (line.rfind("# HELP ", 0) == 0) {
      auto name = line.substr(7, line.find(' ', 7) - 7);
      REQUIRE_MESSAGE(seen_families.insert(name).second, "family twice: " << name);
      families.push_back(name);
      current = name;
      std::string type_line;
      REQUIRE(std::getline(in, type_line));
      REQUIRE(type_line.rfind("# TYPE " + name + " ", 0) == 0);
      type = type_line.substr(8 + name.size());
      continue;
    }
    REQUIRE_MESSAGE(line[0] != '#', line);
    auto name_end = line.find_first_of("{ ");
    auto name = line.substr(0, name_end);
    auto base = name;
    if (type == "histogram") {
      for (std::string suffix : { "_bucket", "_sum", "_count" }) {
        if (name.size() > suffix.size() && name.ends_with(suffix)) {
          base = name.substr(0, name.size() - suffix.size());
        }
      }
    }
    REQUIRE_MESSAGE(base == current, "sample of " << base << " inside family " << current);
    auto series = line.substr(0, line.rfind(' '));
    REQUIRE_MESSAGE(seen_series.insert(series).second, "series twice: " << series);
  }
  return families;
}

} // namespace

TEST_SUITE("service::Metrics")
{
  TEST_CASE("label values escape backslash, double quote and line feed")
  {
    std::string out;
    service::append_label_value(out, "a\\b\"c\nd");
    CHECK(out == "a\\\\b\\\"c\\nd");

    auto metrics = service::Metrics::create({});
    REQUIRE(metrics->configure(config_with({ { "c\"i", "we\\ird\nname" } })).has_value());
    auto text = metrics->render();
    CHECK(has_line(
      text, "jtr_slot_consecutive_failures{controller=\"c\\\"i\",user=\"we\\\\ird\\nname\"} 0"));
    check_exposition(text);
  }

  TEST_CASE("the admin token's age and rotations are per controller that rotates it")
  {
    util::ManualClock clock(at(10'000));
    service::Metrics::Options options;
    options.clock = &clock;
    auto metrics = service::Metrics::create(options);
    auto c = config_with({ { "ci", "svc-a" }, { "qa", "svc-a" } });
    c->controllers[0].admin_token_rotation =
      std::make_shared<const config::AdminTokenRotation>(config::default_admin_token_rotation());
    REQUIRE(metrics->configure(c).has_value());
    auto text = metrics->render();
    // Before the first rotation: counters at 0, no age.
    CHECK(
      has_line(text, "jtr_admin_token_rotations_total{controller=\"ci\",result=\"rotated\"} 0"));
    CHECK(samples_of(text, "jtr_admin_token_age_seconds").empty());
    metrics->on_admin_token("ci", rotation::AdminTokenResult::lost);
    metrics->on_admin_token("ci", rotation::AdminTokenResult::rotated);
    metrics->on_admin_token_age("ci", at(9'000));
    text = metrics->render();
    check_exposition(text);
    CHECK(
      has_line(text, "jtr_admin_token_rotations_total{controller=\"ci\",result=\"rotated\"} 1"));
    CHECK(has_line(text, "jtr_admin_token_rotations_total{controller=\"ci\",result=\"lost\"} 1"));
    CHECK(has_line(text, "jtr_admin_token_rotations_total{controller=\"ci\",result=\"failed\"} 0"));
    CHECK(has_line(text, "jtr_admin_token_age_seconds{controller=\"ci\"} 1000"));
    // qa does not rotate its admin token: no series of it.
    CHECK(samples_of(text, "jtr_admin_token_rotations_total").size() == 3);
    clock.set(at(10'500));
    CHECK(has_line(metrics->render(), "jtr_admin_token_age_seconds{controller=\"ci\"} 1500"));
  }

  TEST_CASE("every family has one HELP and TYPE and its samples together, in base units")
  {
    service::Metrics::Options options;
    options.version = "1.2.3";
    auto metrics = service::Metrics::create(options);
    REQUIRE(
      metrics->configure(config_with({ { "ci", "svc-a" }, { "ci", "svc-b" }, { "qa", "svc-a" } }))
        .has_value());
    service::SlotFacts facts;
    facts.last_success = at(1000);
    facts.next_rotation = at(2000);
    facts.expires = at(3000);
    facts.jenkins_expires = at(4000);
    facts.failure_budget = 172800s;
    facts.consecutive_failures = 2;
    facts.state = service::SlotState::failing;
    CHECK(metrics->set_slot("ci", "SVC-A", facts)); // Jenkins ids compare case-insensitively
    CHECK_FALSE(metrics->set_slot("ci", "svc-z", facts));
    metrics->reload_result(true, at(900));
    metrics->on_controller("ci", true, false);
    metrics->on_controller("qa", false, true);
    metrics->on_request("ci", rotation::RequestOp::mint, 200, 40ms);
    metrics->on_request("ci", rotation::RequestOp::mint, 0, 3000ms);
    metrics->on_request("ci", rotation::RequestOp::list, 503, 5ms);
    metrics->on_revoke("ci", "svc-a", rotation::RevokeReason::superseded, true);
    metrics->on_revoke("ci", "svc-a", rotation::RevokeReason::lost_mint, false);
    metrics->on_sink("ci", "svc-a", config::SinkType::http, state::SinkOutcome::retryable);
    rotation::SlotReport report;
    report.controller = "ci";
    report.user = "svc-a";
    report.result = rotation::SlotResult::committed;
    metrics->on_slot(report);
    report.result = rotation::SlotResult::not_due;
    metrics->on_slot(report);
    rotation::PassResult pass;
    pass.duration = 1500ms;
    metrics->on_pass({}, pass);

    auto text = metrics->render();
    auto families = check_exposition(text);
    CHECK(families.size() == service::Metrics::family_count());
    CHECK(has_line(text, "jtr_build_info{version=\"1.2.3\"} 1"));
    const std::string a = "{controller=\"ci\",user=\"svc-a\"}";
    CHECK(has_line(text, "jtr_slot_last_success_timestamp_seconds" + a + " 1000"));
    CHECK(has_line(text, "jtr_slot_next_rotation_timestamp_seconds" + a + " 2000"));
    CHECK(has_line(text, "jtr_slot_token_expiry_timestamp_seconds" + a + " 3000"));
    CHECK(has_line(text, "jtr_slot_jenkins_token_expiry_timestamp_seconds" + a + " 4000"));
    CHECK(has_line(text, "jtr_slot_failure_budget_seconds" + a + " 172800"));
    CHECK(has_line(text, "jtr_slot_consecutive_failures" + a + " 2"));
    CHECK(has_line(text, "jtr_slot_state{controller=\"ci\",user=\"svc-a\",state=\"failing\"} 1"));
    // A slot never rotated has no last success nor expiry, and is "new".
    CHECK(samples_of(text, "jtr_slot_last_success_timestamp_seconds").size() == 1);
    CHECK(has_line(text, "jtr_slot_state{controller=\"qa\",user=\"svc-a\",state=\"new\"} 1"));
    CHECK(has_line(text, "jtr_rotations_total{controller=\"ci\",result=\"committed\"} 1"));
    CHECK(has_line(text, "jtr_rotations_total{controller=\"ci\",result=\"not_due\"} 1"));
    CHECK(has_line(text, "jtr_rotations_total{controller=\"qa\",result=\"failed\"} 0"));
    CHECK(has_line(text, "jtr_controller_up{controller=\"ci\"} 1"));
    CHECK(has_line(text, "jtr_controller_up{controller=\"qa\"} 0"));
    CHECK(has_line(text, "jtr_controller_stale_database{controller=\"qa\"} 1"));
    CHECK(has_line(
      text,
      "jtr_jenkins_requests_total{controller=\"ci\",operation=\"mint\",status_class=\"2xx\"} 1"));
    CHECK(has_line(
      text,
      "jtr_jenkins_requests_total{controller=\"ci\",operation=\"mint\",status_class=\"none\"} 1"));
    CHECK(has_line(
      text,
      "jtr_jenkins_requests_total{controller=\"ci\",operation=\"list\",status_class=\"5xx\"} 1"));
    // Histograms: cumulative buckets in seconds, +Inf equal to _count, _sum in seconds.
    const std::string mint = "controller=\"ci\",operation=\"mint\"";
    CHECK(
      has_line(text, "jtr_jenkins_request_duration_seconds_bucket{" + mint + ",le=\"0.025\"} 0"));
    CHECK(
      has_line(text, "jtr_jenkins_request_duration_seconds_bucket{" + mint + ",le=\"0.05\"} 1"));
    CHECK(has_line(text, "jtr_jenkins_request_duration_seconds_bucket{" + mint + ",le=\"2.5\"} 1"));
    CHECK(has_line(text, "jtr_jenkins_request_duration_seconds_bucket{" + mint + ",le=\"5\"} 2"));
    CHECK(
      has_line(text, "jtr_jenkins_request_duration_seconds_bucket{" + mint + ",le=\"+Inf\"} 2"));
    CHECK(has_line(text, "jtr_jenkins_request_duration_seconds_sum{" + mint + "} 3.04"));
    CHECK(has_line(text, "jtr_jenkins_request_duration_seconds_count{" + mint + "} 2"));
    CHECK(has_line(text, "jtr_tokens_revoked_total{controller=\"ci\",reason=\"superseded\"} 1"));
    CHECK(
      has_line(text, "jtr_token_revoke_failures_total{controller=\"ci\",reason=\"lost_mint\"} 1"));
    CHECK(has_line(text, "jtr_sink_deliveries_total{type=\"http\",result=\"retryable\"} 1"));
    CHECK(has_line(text, "jtr_sink_deliveries_total{type=\"file\",result=\"ok\"} 0"));
    CHECK(has_line(text, "jtr_pass_duration_seconds_bucket{kind=\"full\",le=\"1\"} 0"));
    CHECK(has_line(text, "jtr_pass_duration_seconds_bucket{kind=\"full\",le=\"5\"} 1"));
    CHECK(has_line(text, "jtr_pass_duration_seconds_sum{kind=\"full\"} 1.5"));
    CHECK(has_line(text, "jtr_config_last_reload_successful 1"));
    CHECK(has_line(text, "jtr_config_last_reload_timestamp_seconds 900"));
    CHECK(samples_of(text, "jtr_secret_memory_lock_failures_total").size() == 1);
    CHECK(text.find("# TYPE jtr_rotations_total counter\n") != std::string::npos);
    CHECK(text.find("# TYPE jtr_pass_duration_seconds histogram\n") != std::string::npos);

    metrics->reload_result(false, at(950));
    text = metrics->render();
    CHECK(has_line(text, "jtr_config_last_reload_successful 0"));
    CHECK(has_line(text, "jtr_config_last_reload_timestamp_seconds 950"));
  }

  TEST_CASE("the series of a slot or controller that leaves the config disappear")
  {
    auto metrics = service::Metrics::create({});
    REQUIRE(
      metrics->configure(config_with({ { "ci", "svc-a" }, { "ci", "svc-b" }, { "qa", "svc-c" } }))
        .has_value());
    metrics->on_controller("qa", true, false);
    auto text = metrics->render();
    CHECK(samples_of(text, "jtr_slot_state").size() == 3);
    CHECK(has_line(text, "jtr_controller_up{controller=\"qa\"} 1"));

    REQUIRE(metrics->configure(config_with({ { "ci", "svc-b" }, { "ci", "svc-d" } })).has_value());
    text = metrics->render();
    check_exposition(text);
    auto states = samples_of(text, "jtr_slot_state");
    REQUIRE(states.size() == 2);
    CHECK(states[0].find("user=\"svc-b\"") != std::string::npos);
    CHECK(states[1].find("user=\"svc-d\"") != std::string::npos);
    CHECK(text.find("qa") == std::string::npos);
    CHECK(text.find("svc-a") == std::string::npos);
  }

  TEST_CASE("a scrape in pieces equals the whole text, and a reload during it changes neither")
  {
    std::vector<std::pair<std::string, std::string>> slots;
    for (int i = 0; i < 200; ++i) {
      slots.emplace_back("ci", fmt::format("svc-{:03}", i));
    }
    auto metrics = service::Metrics::create({});
    REQUIRE(metrics->configure(config_with(slots)).has_value());
    const auto whole = metrics->render();

    auto scrape = metrics->scrape();
    std::string pieced;
    int pieces = 0;
    bool more = true;
    while (more) {
      std::string piece;
      more = scrape->next(piece, 1000);
      CHECK(piece.back() == '\n');
      pieced += piece;
      ++pieces;
      if (pieces == 3) {
        // A reload drops half the slots and adds one while this scrape is in flight.
        auto fewer = std::vector(slots.begin(), slots.begin() + 100);
        fewer.emplace_back("ci", "svc-new");
        REQUIRE(metrics->configure(config_with(fewer)).has_value());
      }
    }
    CHECK(pieces > 20);
    CHECK(pieced == whole);

    // A scrape begun after the reload sees the new slot set only, while the old scrape
    // object is still alive (compaction waits for it).
    auto text = metrics->render();
    check_exposition(text);
    CHECK(samples_of(text, "jtr_slot_state").size() == 101);
    CHECK(text.find("svc-150") == std::string::npos);
    scrape.reset();
    CHECK(metrics->render() == text);
  }

  TEST_CASE("refresh reads each slot's last success, failures and current token from the store")
  {
    state_test::TempDir dir;
    auto store = state::Store::open(dir.path(),
                                    [](std::string_view, std::string_view,
                                       std::string_view) -> util::Result<void> { return {}; })
                   .value();
    util::ManualClock clock(at(1'800'000'000));
    const auto t0 = at(1'799'990'000);
    // svc-a: committed once; svc-b: failed twice and backing off; svc-c: no row.
    auto a = store.ensure_slot("ci", "svc-a", "svc-a").value();
    auto seq = store.next_seq().value();
    REQUIRE_OK(store.create_attempt(seq, a, "rotator-x-000001", t0));
    const nlohmann::json env = { { "format", "jenkins-token-rotator/v1" },
                                 { "token_name", "rotator-x-000001" },
                                 { "token_uuid", "u-1" },
                                 { "sealed", { { { "ciphertext", "c2VhbGVk" } } } } };
    const std::vector<state::Envelope> envs{ { 0, "h", env.dump() } };
    REQUIRE_OK(store.mark_minted(seq, { "u-1", t0, t0 + 30 * 24h, t0 + 31 * 24h }, envs, t0));
    REQUIRE_OK(store.mark_verified(seq, t0));
    REQUIRE_OK(store.record_sink_result(seq, 0, state::SinkOutcome::ok, "", t0));
    REQUIRE_OK(store.commit_attempt(seq, t0, 24h));
    auto b = store.ensure_slot("ci", "svc-b", "svc-b").value();
    for (int i = 0; i < 2; ++i) {
      auto s = store.next_seq().value();
      REQUIRE_OK(store.create_attempt(s, b, fmt::format("rotator-x-{:06}", s), t0));
      REQUIRE_OK(store.fail_attempt(s, "refused", t0));
    }
    REQUIRE_OK(store.set_backoff(b, clock.now() + 1h));

    service::Metrics::Options options;
    options.store = &store;
    options.next_due = [](const config::User& u, const std::optional<state::Slot>& row, Time now) {
      return row ? now + 1h : now + std::chrono::seconds(u.user.size());
    };
    options.clock = &clock;
    auto metrics = service::Metrics::create(options);
    REQUIRE(
      metrics->configure(config_with({ { "ci", "svc-a" }, { "ci", "svc-b" }, { "ci", "svc-c" } }))
        .has_value());
    auto text = metrics->render();
    const std::string a_labels = "{controller=\"ci\",user=\"svc-a\"}";
    const std::string b_labels = "{controller=\"ci\",user=\"svc-b\"}";
    const auto s = [](Time t) { return std::to_string(t.time_since_epoch().count()); };
    CHECK(has_line(text, "jtr_slot_last_success_timestamp_seconds" + a_labels + " " + s(t0)));
    CHECK(has_line(text,
                   "jtr_slot_token_expiry_timestamp_seconds" + a_labels + " " + s(t0 + 30 * 24h)));
    CHECK(has_line(text, "jtr_slot_jenkins_token_expiry_timestamp_seconds" + a_labels + " " +
                           s(t0 + 31 * 24h)));
    CHECK(has_line(text, "jtr_slot_next_rotation_timestamp_seconds" + a_labels + " " +
                           s(clock.now() + 1h)));
    CHECK(has_line(text, "jtr_slot_state{controller=\"ci\",user=\"svc-a\",state=\"ok\"} 1"));
    CHECK(has_line(text, "jtr_slot_consecutive_failures" + b_labels + " 2"));
    CHECK(has_line(text, "jtr_slot_state{controller=\"ci\",user=\"svc-b\",state=\"backoff\"} 1"));
    CHECK(has_line(text, "jtr_slot_state{controller=\"ci\",user=\"svc-c\",state=\"new\"} 1"));
    CHECK(
      has_line(text, "jtr_slot_next_rotation_timestamp_seconds{controller=\"ci\",user=\"svc-c\"} " +
                       s(clock.now() + 5s)));
    CHECK(samples_of(text, "jtr_slot_token_expiry_timestamp_seconds").size() == 1);

    // The backoff ends: the same row is "failing" at the next refresh (after a pass).
    clock.advance(2h);
    metrics->on_pass({}, {});
    text = metrics->render();
    CHECK(has_line(text, "jtr_slot_state{controller=\"ci\",user=\"svc-b\",state=\"failing\"} 1"));
  }

  TEST_CASE("the slot state follows the row: degraded, backoff, failing, new, ok")
  {
    const auto now = at(1000);
    CHECK(service::slot_state(std::nullopt, now) == service::SlotState::fresh);
    state::Slot row;
    CHECK(service::slot_state(row, now) == service::SlotState::fresh);
    row.last_rotation = at(10);
    row.current_uuid = "u";
    CHECK(service::slot_state(row, now) == service::SlotState::ok);
    row.consecutive_failures = 1;
    CHECK(service::slot_state(row, now) == service::SlotState::failing);
    row.backoff_until = at(2000);
    CHECK(service::slot_state(row, now) == service::SlotState::backoff);
    row.degraded = true;
    CHECK(service::slot_state(row, now) == service::SlotState::degraded);
    CHECK(service::to_string(service::SlotState::fresh) == "new");
  }

  TEST_CASE("a scrape of 10,000 slots renders in pieces of bounded size, quickly")
  {
    std::vector<std::pair<std::string, std::string>> slots;
    for (int i = 0; i < 10000; ++i) {
      slots.emplace_back(i % 2 == 0 ? "ci" : "qa", fmt::format("svc-deploy-{:05}", i));
    }
    auto metrics = service::Metrics::create({});
    REQUIRE(metrics->configure(config_with(slots)).has_value());
    service::SlotFacts facts;
    facts.last_success = at(1'800'000'000);
    facts.next_rotation = at(1'800'600'000);
    facts.expires = at(1'802'000'000);
    facts.jenkins_expires = at(1'802'100'000);
    facts.state = service::SlotState::ok;
    for (const auto& [c, u] : slots) {
      metrics->set_slot(c, u, facts);
    }
    auto start = std::chrono::steady_clock::now();
    auto scrape = metrics->scrape();
    std::string piece;
    piece.reserve(service::Metrics::Scrape::k_chunk + 4096);
    std::size_t total = 0;
    std::size_t largest = 0;
    bool more = true;
    while (more) {
      piece.clear();
      more = scrape->next(piece);
      total += piece.size();
      largest = std::max(largest, piece.size());
    }
    auto took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    MESSAGE(fmt::format("10,000 slots: {} bytes in {:.1f} ms, largest piece {} bytes", total,
                        took.count(), largest));
    CHECK(total > 5'000'000);
    CHECK(largest < service::Metrics::Scrape::k_chunk + 1024);
    CHECK(piece.capacity() < service::Metrics::Scrape::k_chunk + 4096 + 1); // never regrown
  }
}
