// admin_token_rotation in the config (docs/admin-token-rotation.md): the schedule keys users
// have, store: state|file, and the checks of store: file against admin_token_file.
#include "config/config_files.hpp"
#include "config/loader.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using test::ConfigFiles;

// ROTATION is replaced by the controller's admin_token_rotation line (line 7).
const char* const k_config = R"(state_dir: /var/lib/jtr
controllers:
  - name: ci
    url: https://jenkins.example.com/
    admin_user: token-rotator
    admin_token_file: @DIR@/admin-token
    ROTATION
recipients:
  deploy: @DIR@/deploy.pub
users:
  - user: svc-a
    controller: ci
    sinks: [{type: file, path: /tmp/a.json, recipients: [deploy]}]
)";

std::string
with(const std::string& rotation)
{
  std::string text = k_config;
  text.replace(text.find("ROTATION"), 8, rotation);
  return text;
}

} // namespace

TEST_SUITE("config admin_token_rotation")
{
  TEST_CASE("without the key the admin token is not rotated")
  {
    ConfigFiles d;
    auto c = d.load(with("timeout: 30s"));
    REQUIRE_MESSAGE(c.has_value(), (c ? std::string() : c.error().message));
    CHECK(c->controllers[0].admin_token_rotation == nullptr);
  }

  TEST_CASE("an empty mapping takes the defaults: monthly, 1h grace, state, rotator-admin-")
  {
    ConfigFiles d;
    auto c = d.load(with("admin_token_rotation: {}"));
    REQUIRE_MESSAGE(c.has_value(), (c ? std::string() : c.error().message));
    const auto& a = c->controllers[0].admin_token_rotation;
    REQUIRE(a != nullptr);
    CHECK(a->policy.schedule == "every 30d");
    CHECK(a->policy.grace == std::chrono::hours(1));
    CHECK(a->policy.token_prefix == "rotator-admin-");
    CHECK(a->store == config::AdminTokenStore::state);
    CHECK(a->policy.parsed_schedule != nullptr);
    CHECK(a->policy.zone.has_value());
  }

  TEST_CASE("the schedule keys users have are read, cron included")
  {
    ConfigFiles d;
    auto c = d.load(with(
      R"(admin_token_rotation: {schedule: "0 4 * * 1", timezone: Europe/Paris, jitter: 5m, grace: 2h, lifetime: 20d, failure_budget: 1d, token_prefix: jtr-adm-, store: file})"));
    REQUIRE_MESSAGE(c.has_value(), (c ? std::string() : c.error().message));
    const auto& a = *c->controllers[0].admin_token_rotation;
    CHECK(a.policy.schedule == "0 4 * * 1");
    CHECK(a.policy.timezone == "Europe/Paris");
    CHECK(a.policy.jitter == std::chrono::minutes(5));
    CHECK(a.policy.grace == std::chrono::hours(2));
    CHECK(a.policy.lifetime == std::chrono::hours(24 * 20));
    CHECK(a.policy.token_prefix == "jtr-adm-");
    CHECK(a.store == config::AdminTokenStore::file);
  }

  TEST_CASE("unknown keys, bad values and the lifetime rule name file:line:col and the key path")
  {
    ConfigFiles d;
    auto e = d.errors(with("admin_token_rotation: {prune: all}"));
    CHECK(e.find("c.yaml:7:") != std::string::npos);
    CHECK(e.find("controllers[0].admin_token_rotation") != std::string::npos);
    CHECK(e.find("prune") != std::string::npos);

    e = d.errors(with("admin_token_rotation: {store: disk}"));
    CHECK(e.find("controllers[0].admin_token_rotation.store") != std::string::npos);
    CHECK(e.find("disk") != std::string::npos);

    e = d.errors(with("admin_token_rotation: {schedule: every sometimes}"));
    CHECK(e.find("c.yaml:7:") != std::string::npos);
    CHECK(e.find("controllers[0].admin_token_rotation.schedule") != std::string::npos);

    e = d.errors(with("admin_token_rotation: {schedule: every 30d, lifetime: 10d}"));
    CHECK(e.find("controllers[0].admin_token_rotation.lifetime: expected at least") !=
          std::string::npos);

    e = d.errors(with("admin_token_rotation: every 30d"));
    CHECK(e.find("controllers[0].admin_token_rotation") != std::string::npos);
  }

  TEST_CASE("store: file refuses a token file that is not 0600 or cannot be replaced")
  {
    ConfigFiles d;
    CHECK(d.errors(with("admin_token_rotation: {store: file}")).empty());

    ::chmod(d.path("admin-token").c_str(), 0400);
    auto e = d.errors(with("admin_token_rotation: {store: file}"));
    CHECK(e.find("c.yaml:7:") != std::string::npos);
    CHECK(
      e.find("controllers[0].admin_token_rotation.store: store: file: expected admin_token_file") !=
      std::string::npos);
    CHECK(e.find("0600") != std::string::npos);
    // store: state never writes the file: a read-only one is fine.
    CHECK(d.errors(with("admin_token_rotation: {store: state}")).empty());

    ::chmod(d.path("admin-token").c_str(), 0600);
    if (::geteuid() != 0) { // root writes anywhere: the directory check cannot fail for it
      ::chmod(d.sub("@DIR@").c_str(), 0555);
      e = d.errors(with("admin_token_rotation: {store: file}"));
      ::chmod(d.sub("@DIR@").c_str(), 0755);
      CHECK(e.find("directory") != std::string::npos);
    }
  }

  TEST_CASE("a self controller has no admin token to rotate")
  {
    ConfigFiles d;
    const std::string text = R"(controllers:
  - name: lean
    url: https://lean.example.com/
    auth: self
    admin_token_rotation: {}
recipients:
  deploy: @DIR@/deploy.pub
users:
  - user: svc-a
    controller: lean
    prune: all
    sinks: [{type: file, path: /tmp/a.json, recipients: [deploy]}]
)";
    auto r = d.load(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("c.yaml:5:") != std::string::npos);
    CHECK(r.error().message.find("controllers[0].admin_token_rotation: expected no "
                                 "admin_token_rotation with auth: self") != std::string::npos);
  }
}
