// auth: self per user (docs/self-rotation.md): a user of an admin controller may rotate
// itself over REST; a user of a self controller cannot ask for the admin path.
#include "config/config_files.hpp"
#include "config/loader.hpp"
#include "support/text.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using test::replace;

using test::ConfigFiles;

// An admin controller with a script-path user and a self user, and a self controller.
const char* const k_user_auth_config = R"(state_dir: /var/lib/jtr
controllers:
  - name: ci
    url: https://jenkins.example.com/
    admin_user: token-rotator
    admin_token_file: @DIR@/admin-token
  - name: lean
    url: https://lean.example.com/
    auth: self
recipients:
  deploy: @DIR@/deploy.pub
users:
  - user: svc-script
    controller: ci
    sinks: [{type: file, path: /tmp/a.json, recipients: [deploy]}]
  - user: svc-self
    controller: ci
    auth: self
    prune: all
    bootstrap_token_file: @DIR@/boot
    sinks: [{type: file, path: /tmp/b.json, recipients: [deploy]}]
  - user: svc-lean
    controller: lean
    prune: all
    sinks: [{type: file, path: /tmp/c.json, recipients: [deploy]}]
)";

} // namespace

TEST_SUITE("config auth: self per user")
{
  TEST_CASE("a user of an admin controller may say auth: self; others take their controller's")
  {
    ConfigFiles d;
    auto c = d.load(k_user_auth_config);
    REQUIRE_MESSAGE(c.has_value(), (c ? std::string() : c.error().message));
    REQUIRE(c->users.size() == 3);
    CHECK(c->users[0].auth == config::Auth::admin);
    CHECK(c->users[1].auth == config::Auth::self);
    CHECK(c->users[1].bootstrap_token_file.find("/boot") != std::string::npos);
    CHECK(c->users[2].auth == config::Auth::self);
    CHECK(c->controllers[0].auth == config::Auth::admin);
  }

  TEST_CASE("auth: self on a self controller's user is allowed (it is the default there)")
  {
    ConfigFiles d;
    CHECK(d.errors(replace(k_user_auth_config, "    controller: lean\n",
                           "    controller: lean\n    auth: self\n"))
            .empty());
  }

  TEST_CASE("auth: admin on a self controller's user is refused, naming the key path and why")
  {
    ConfigFiles d;
    const auto e = d.errors(replace(k_user_auth_config, "    controller: lean\n",
                                    "    controller: lean\n    auth: admin\n"));
    CHECK(e.find("c.yaml:") != std::string::npos);
    CHECK(e.find("users[2].auth: expected auth: self (or none) for a user of controller \"lean\", "
                 "found auth: admin") != std::string::npos);
    CHECK(e.find("no admin credential") != std::string::npos);
  }

  TEST_CASE("a self user of an admin controller needs prune: all")
  {
    ConfigFiles d;
    const auto e =
      d.errors(replace(k_user_auth_config, "    auth: self\n    prune: all\n", "    auth: self\n"));
    CHECK(e.find("users[1].prune: expected prune: all for a user with auth: self") !=
          std::string::npos);
    CHECK(e.find("revokeAllExcept") != std::string::npos);
  }

  TEST_CASE("bootstrap_token_file on a script-path user of an admin controller is refused")
  {
    ConfigFiles d;
    const auto e = d.errors(replace(k_user_auth_config, "    controller: ci\n    sinks",
                                    "    controller: ci\n    bootstrap_token_file: "
                                    "@DIR@/boot\n    sinks"));
    CHECK(e.find("users[0].bootstrap_token_file: expected no bootstrap_token_file") !=
          std::string::npos);
  }

  TEST_CASE("auth: on a user takes admin or self only")
  {
    ConfigFiles d;
    const auto e = d.errors(
      replace(k_user_auth_config, "    auth: self\n    prune", "    auth: rest\n    prune"));
    CHECK(e.find("users[1].auth") != std::string::npos);
  }

  TEST_CASE("auth is not a defaults: key")
  {
    ConfigFiles d;
    const auto e =
      d.errors(replace(k_user_auth_config, "recipients:", "defaults: {auth: self}\nrecipients:"));
    CHECK(e.find("defaults.auth") != std::string::npos);
  }
}
