// DESIGN §1.4: names full of Groovy syntax reach Jenkins as literal data, and only our
// constant scripts ever run.

#include "emulator_process.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>

namespace {

using namespace std::chrono_literals;
using test_emu::EmulatorProcess;

// No ':' in user names: HTTP Basic auth splits user:token at the first one.
const std::vector<std::string> k_users = {
  "q\"uote",
  "apo'strophe",
  "dollar$sign",
  "${x}",
  "back\\slash\\",
  "new\nline",
  "tri\"\"\"ple",
  "tri'''ple",
  "${System.exit(1)}",
  "\"; Jenkins.instance.doSafeExit(null); \"",
  "'; System.exit(2); '",
  "\"\"\" + System.exit(3) + \"\"\"",
  "''' + Jenkins.instance.doSafeExit(null) + '''",
  "@@PAYLOAD@@ \\u0027 \\\"",
  "\xc3\xbc"
  "nic"
  "\xc3\xb6"
  "de \xe2\x98\x83 \xf0\x9f\x8e\x89",
  "tab\there\r\nand cr",
};

const std::vector<std::string> k_token_names = {
  "${System.exit(1)}",
  "\"; Jenkins.instance.doSafeExit(null); \"",
  "'''\n}; System.exit(4); def x = '''",
  "\"\"\"${Jenkins.instance.doSafeExit(null)}\"\"\"",
  "JTR-RESULT:e30=",
  "\nJTR-TOKEN:0:11" + std::string(32, 'a'),
  "$x \\$y \\\\${z}",
  "'); System.exit(5); ('",
  "back\\slash\\",
  "\" + \"",
  "@@PAYLOAD@@",
  "name\r\nwith\r\nCRLF",
  "\\u0000 \\n",
  "`backtick` /slashy/ $/dollar slashy/$",
  "' \" ' \"",
  "\xe2\x80\xa8 line separator",
};

std::string
escaped(const std::string& s)
{
  return nlohmann::json(s).dump();
}

} // namespace

TEST_SUITE("jenkins scripts cannot be injected")
{
  TEST_CASE("users and token names made of Groovy syntax come back byte for byte, and only "
            "our scripts ran")
  {
    if (const auto why = test_emu::missing_tools(); !why.empty()) {
      MESSAGE("skipped: the emulator cannot run: " << why);
      return;
    }
    REQUIRE(k_users.size() == k_token_names.size());
    EmulatorProcess emu({ "2.560", "", {} });
    for (const auto& u : k_users) {
      emu.create_user(u);
    }
    std::vector<jenkins::MintItem> items;
    for (std::size_t i = 0; i < k_users.size(); ++i) {
      items.push_back({ k_users[i], k_token_names[i], 24h });
    }
    auto m = emu.mint(jenkins::Variant::expiring, items);
    REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
    REQUIRE(m->items.size() == items.size());

    // The emulator's own records (not our scripts' answers) hold the exact bytes.
    const auto created = emu.events();
    std::size_t seen = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      INFO("item ", i, ": user ", escaped(k_users[i]), ", name ", escaped(k_token_names[i]));
      REQUIRE(m->items[i].minted.has_value());
      CHECK(emu.verify(k_users[i], m->items[i].minted->token).has_value());
      for (const auto& e : created) {
        if (e.at("event") == "token_created" && e.at("uuid") == m->items[i].minted->uuid) {
          CHECK(e.at("user").get<std::string>() == k_users[i]);
          CHECK(e.at("name").get<std::string>() == k_token_names[i]);
          ++seen;
        }
      }
    }
    CHECK(seen == items.size());
    std::vector<std::string> state_users;
    const auto state = emu.state();
    for (const auto& u : state.at("users")) {
      state_users.push_back(u.at("id").get<std::string>());
    }
    for (const auto& u : k_users) {
      CHECK_MESSAGE(std::count(state_users.begin(), state_users.end(), u) == 1, escaped(u));
    }

    auto l = emu.list(k_users);
    REQUIRE_MESSAGE(l.has_value(), (l ? "" : l.error().message));
    for (std::size_t i = 0; i < k_users.size(); ++i) {
      INFO("user ", escaped(k_users[i]));
      REQUIRE_FALSE(l->users[i].error.has_value());
      REQUIRE(l->users[i].tokens.size() == 1);
      CHECK(l->users[i].tokens[0].uuid == m->items[i].minted->uuid);
      CHECK(l->users[i].tokens[0].name == k_token_names[i]);
    }

    std::vector<jenkins::RevokeItem> revokes;
    for (std::size_t i = 0; i < k_users.size(); ++i) {
      revokes.push_back({ k_users[i], m->items[i].minted->uuid });
    }
    auto r = emu.revoke(jenkins::Variant::expiring, revokes);
    REQUIRE(r.has_value());
    for (const auto& item : r->items) {
      CHECK(item.outcome == jenkins::RevokeOutcome::revoked);
    }

    // Still alive (no System.exit, no safe exit), and nothing but mint, list and revoke
    // was compiled.
    CHECK(emu.state().at("users").size() >= k_users.size());
    CHECK(emu.check_only_known_scripts() == 3);
  }
}
