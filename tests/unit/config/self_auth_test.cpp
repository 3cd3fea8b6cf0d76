// auth: self in the config (docs/self-rotation.md): no admin credential, prune: all,
// bootstrap_token_file only where it means something, state_key checked as a secret.
#include "config/config_files.hpp"
#include "config/loader.hpp"
#include "support/text.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using test::replace;

using test::ConfigFiles;

// An admin controller and a self controller, each with one user.
const char* const k_mixed = R"(state_dir: /var/lib/jtr
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
  - user: svc-a
    controller: ci
    sinks: [{type: file, path: /tmp/a.json, recipients: [deploy]}]
  - user: svc-b
    controller: lean
    prune: all
    bootstrap_token_file: @DIR@/boot
    sinks: [{type: file, path: /tmp/b.json, recipients: [deploy]}]
)";

} // namespace

TEST_SUITE("config auth: self")
{
  TEST_CASE("a mixed config loads: an admin controller beside a self one without admin keys")
  {
    ConfigFiles d;
    auto c = d.load(k_mixed);
    REQUIRE_MESSAGE(c.has_value(), (c ? std::string() : c.error().message));
    REQUIRE(c->controllers.size() == 2);
    CHECK(c->controllers[0].auth == config::Auth::admin);
    CHECK(c->controllers[1].auth == config::Auth::self);
    CHECK(c->controllers[1].admin_user.empty());
    CHECK(c->controllers[1].admin_token_file.empty());
    CHECK(c->users[1].bootstrap_token_file.find("/boot") != std::string::npos);
    CHECK(c->users[0].bootstrap_token_file.empty());
  }

  TEST_CASE("a self controller that names an admin credential is refused")
  {
    ConfigFiles d;
    const auto e = d.errors(
      replace(k_mixed, "    auth: self\n", "    auth: self\n    admin_user: token-rotator\n"));
    CHECK(e.find("c.yaml:") != std::string::npos);
    CHECK(e.find("controllers[1].admin_user: expected no admin_user with auth: self") !=
          std::string::npos);
  }

  TEST_CASE("an admin controller still needs its admin keys")
  {
    ConfigFiles d;
    const auto e = d.errors(replace(k_mixed, "    admin_token_file: @DIR@/admin-token\n", ""));
    CHECK(e.find("expected key admin_token_file, found none (or auth: self") != std::string::npos);
  }

  TEST_CASE("a self user without prune: all is refused, saying why")
  {
    ConfigFiles d;
    const auto e = d.errors(replace(k_mixed, "    prune: all\n", ""));
    CHECK(e.find("users[1].prune: expected prune: all for a user of controller \"lean\" (auth: "
                 "self)") != std::string::npos);
    CHECK(e.find("revokeAllExcept") != std::string::npos);
  }

  TEST_CASE("bootstrap_token_file on an admin controller's user is refused")
  {
    ConfigFiles d;
    const auto e = d.errors(replace(k_mixed, "    controller: ci\n",
                                    "    controller: ci\n    bootstrap_token_file: @DIR@/boot\n"));
    CHECK(e.find("users[0].bootstrap_token_file: expected no bootstrap_token_file") !=
          std::string::npos);
  }

  TEST_CASE("a bootstrap token file readable by others is refused like any secret file")
  {
    ConfigFiles d;
    const auto e = d.errors(replace(k_mixed, "@DIR@/boot", "@DIR@/loose-boot"));
    CHECK(e.find("users[1].bootstrap_token_file") != std::string::npos);
    CHECK(e.find("loose-boot") != std::string::npos);
  }

  TEST_CASE("auth takes admin or self only")
  {
    ConfigFiles d;
    const auto e = d.errors(replace(k_mixed, "auth: self", "auth: rest"));
    CHECK(e.find("controllers[1].auth") != std::string::npos);
  }

  TEST_CASE("state_key must be a secret file")
  {
    ConfigFiles d;
    CHECK(d.errors(std::string("state_key: @DIR@/boot\n") + k_mixed).empty());
    CHECK(d.errors(std::string("state_key: @DIR@/loose-boot\n") + k_mixed).find("state_key") !=
          std::string::npos);
  }
}
