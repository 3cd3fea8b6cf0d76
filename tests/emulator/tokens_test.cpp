// Mint, list, verify and revoke batches through a real net::Client against the emulator,
// which runs our Groovy for real on each version tier (DESIGN §2.3, §10).

#include "emulator_process.hpp"
#include "jenkins/probe.hpp"
#include "jenkins/script.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>

namespace {

using namespace std::chrono_literals;
using jenkins::Variant;
using test_emu::EmulatorProcess;

#define SKIP_WITHOUT_EMULATOR()                                                                    \
  do {                                                                                             \
    if (const auto why = test_emu::missing_tools(); !why.empty()) {                                \
      MESSAGE("skipped: the emulator cannot run: " << why);                                        \
      return;                                                                                      \
    }                                                                                              \
  } while (false)

jenkins::SysSeconds
now_s()
{
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

std::string
as_text(const crypto::SecretBytes& s)
{
  return { reinterpret_cast<const char*>(s.data()), s.size() };
}

// The events of `kind` in the emulator's log, as (user, uuid, name).
std::vector<std::tuple<std::string, std::string, std::string>>
events_of(EmulatorProcess& emu, const std::string& kind)
{
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  for (const auto& e : emu.events()) {
    if (e.at("event") == kind) {
      out.emplace_back(e.value("user", ""), e.value("uuid", ""), e.value("name", ""));
    }
  }
  return out;
}

// The tokens the emulator holds for `user` (its own state, not our list script).
nlohmann::json
state_tokens(EmulatorProcess& emu, const std::string& user)
{
  const auto state = emu.state();
  for (const auto& u : state.at("users")) {
    if (u.value("name", "") == user || u.value("id", "") == user) {
      return u.at("tokens");
    }
  }
  return nlohmann::json::array();
}

Variant
probed_variant(EmulatorProcess& emu)
{
  auto p = emu.run(jenkins::probe(emu.client()));
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message));
  return jenkins::variant_of(*p);
}

const jenkins::TokenInfo*
find_token(const jenkins::UserTokens& u, const std::string& uuid)
{
  const auto it =
    std::find_if(u.tokens.begin(), u.tokens.end(), [&](const auto& t) { return t.uuid == uuid; });
  return it == u.tokens.end() ? nullptr : &*it;
}

// The local day that holds the instant just before `target` in `zone` (Jenkins' token
// is valid through its expiration day).
std::string
local_day_before(jenkins::SysSeconds target, const std::string& zone)
{
  const auto zt = date::make_zoned(zone, target - 1s);
  return date::format("%F", date::floor<date::days>(zt.get_local_time()));
}

} // namespace

TEST_SUITE("jenkins tokens against the emulator")
{
  TEST_CASE("2.560 in Asia/Tokyo: expiring mint, list, verify and revoke, item by item")
  {
    SKIP_WITHOUT_EMULATOR();
    EmulatorProcess emu({ "2.560", "Asia/Tokyo", { "alice", "bob" } });
    emu.create_user("ghost", false); // exists, but its logins give 500
    REQUIRE(probed_variant(emu) == Variant::expiring);
    emu.control("POST", "reset-counters", nlohmann::json::object());

    const auto now = now_s();
    // Lifetimes, not instants: the script adds them to Jenkins' own now (issue 19 #11).
    const std::vector<jenkins::MintItem> items = {
      { "alice", "rotator-a-000001", 30 * 24h + 7h + 13s },
      { "bob", "rotator-a-000002", 10 * 24h },
      { "nobody", "rotator-a-000003", 24h },
      { "ghost", "rotator-a-000004", 5 * 24h },
    };
    auto m = emu.mint(Variant::expiring, items);
    REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
    CHECK(m->clock.zone == "Asia/Tokyo");
    CHECK(m->clock.version == "2.560");
    CHECK(std::abs(m->clock.now_ms - now.time_since_epoch().count() * 1000) < 60000);
    REQUIRE(m->items.size() == 4);
    REQUIRE(m->items[2].error.has_value());
    CHECK(m->items[2].error->kind == "unknown_user");
    CHECK_FALSE(m->items[2].minted.has_value());
    for (const std::size_t i : { 0U, 1U, 3U }) {
      INFO("item ", i);
      REQUIRE(m->items[i].minted.has_value());
      const auto& t = *m->items[i].minted;
      CHECK(t.token.size() == 34);
      CHECK(as_text(t.token).starts_with("11"));
      REQUIRE(t.jenkins_expires_ms.has_value());
      // The target is Jenkins' now plus the lifetime; the token lives through the local
      // day that holds it, so it ends at most a day after the target.
      const auto target_ms = m->clock.now_ms + items[i].lifetime.count() * 1000;
      CHECK(*t.jenkins_expires_ms >= target_ms);
      CHECK(*t.jenkins_expires_ms - target_ms < 24 * 3600 * 1000);
      CHECK(t.jenkins_expires.ends_with("T00:00:00+09:00"));
    }
    const auto& a = *m->items[0].minted;
    const auto& b = *m->items[1].minted;
    const auto& g = *m->items[3].minted;

    // What the emulator recorded: three tokens, named as asked.
    const auto created = events_of(emu, "token_created");
    REQUIRE(created.size() == 3);
    CHECK(created[0] == std::make_tuple(std::string("alice"), a.uuid, items[0].name));
    CHECK(created[1] == std::make_tuple(std::string("bob"), b.uuid, items[1].name));
    CHECK(created[2] == std::make_tuple(std::string("ghost"), g.uuid, items[3].name));

    CHECK(emu.verify("alice", a.token).has_value());
    CHECK(emu.verify("bob", b.token).has_value());
    const auto ghost = emu.verify("ghost", g.token);
    REQUIRE_FALSE(ghost.has_value());
    CHECK(ghost.error().status == 500);
    CHECK(ghost.error().message.find("realm") != std::string::npos);
    const auto crossed = emu.verify("bob", a.token);
    REQUIRE_FALSE(crossed.has_value());
    CHECK(crossed.error().kind == net::FailureKind::auth);

    const std::vector<std::string> users = { "alice", "nobody", "ghost", "bob" };
    auto l = emu.list(users);
    REQUIRE_MESSAGE(l.has_value(), (l ? "" : l.error().message));
    CHECK(l->clock.zone == "Asia/Tokyo");
    REQUIRE(l->users.size() == 4);
    CHECK(l->users[1].error.has_value());
    CHECK(l->users[1].error->kind == "unknown_user");
    for (const auto& [idx, item] : { std::pair{ 0, 0 }, std::pair{ 2, 3 }, std::pair{ 3, 1 } }) {
      INFO("user ", users[idx]);
      const auto& u = l->users[idx];
      CHECK_FALSE(u.error.has_value());
      const auto* t = find_token(u, m->items[item].minted->uuid);
      REQUIRE(t != nullptr);
      CHECK(t->name == items[item].name);
      CHECK_FALSE(t->expired);
      CHECK_FALSE(t->legacy);
      REQUIRE(t->expiration.has_value());
      // The listed local day is the one that holds the target (bob: the day before
      // his midnight).
      CHECK(
        *t->expiration ==
        local_day_before(jenkins::SysSeconds(std::chrono::seconds(
                           (m->clock.now_ms + items[item].lifetime.count() * 1000 + 999) / 1000)),
                         "Asia/Tokyo"));
      REQUIRE(t->created_ms.has_value());
      CHECK(std::abs(*t->created_ms - l->clock.now_ms) < 60000);
    }
    if (l->usage_statistics.value_or(false)) {
      CHECK(find_token(l->users[0], a.uuid)->use_counter == 1);
      CHECK(find_token(l->users[0], a.uuid)->last_use_ms.has_value());
    }

    // Revoke: alice's token; alice's uuid under bob (another user's token: untouched);
    // an unknown uuid; an unknown user; bob's token.
    const std::vector<jenkins::RevokeItem> revokes = {
      { "alice", a.uuid },  { "bob", a.uuid }, { "alice", "00000000-0000-0000-0000-000000000000" },
      { "nobody", b.uuid }, { "bob", b.uuid },
    };
    auto r = emu.revoke(Variant::expiring, revokes);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    REQUIRE(r->items.size() == 5);
    CHECK(r->items[0].outcome == jenkins::RevokeOutcome::revoked);
    CHECK(r->items[1].outcome == jenkins::RevokeOutcome::not_found);
    CHECK(r->items[2].outcome == jenkins::RevokeOutcome::not_found);
    CHECK(r->items[3].outcome == jenkins::RevokeOutcome::failed);
    REQUIRE(r->items[3].error.has_value());
    CHECK(r->items[3].error->kind == "unknown_user");
    CHECK(r->items[4].outcome == jenkins::RevokeOutcome::revoked);
    const auto revoked = events_of(emu, "token_revoked");
    REQUIRE(revoked.size() == 2);
    CHECK(std::get<1>(revoked[0]) == a.uuid);
    CHECK(std::get<1>(revoked[1]) == b.uuid);
    CHECK(state_tokens(emu, "alice").empty());
    CHECK(state_tokens(emu, "bob").empty());
    CHECK(state_tokens(emu, "ghost").size() == 1);
    const auto gone = emu.verify("alice", a.token);
    REQUIRE_FALSE(gone.has_value());
    CHECK(gone.error().kind == net::FailureKind::auth);

    CHECK(emu.control("GET", "counters").value("POST /scriptText", 0) == 3);
    CHECK(emu.check_only_known_scripts() == 4); // probe, mint, list, revoke
  }

  TEST_CASE("2.547: the helpers mint tokens without expiry; the expiring variant fails per item")
  {
    SKIP_WITHOUT_EMULATOR();
    EmulatorProcess emu({ "2.547", "", { "alice", "bob" } });
    REQUIRE(probed_variant(emu) == Variant::helpers);

    // The 2.548 overload is really missing: each item fails on its own, nothing minted.
    auto wrong = emu.mint(Variant::expiring, { { "alice", "x-1", 24h } });
    REQUIRE(wrong.has_value());
    REQUIRE(wrong->items[0].error.has_value());
    CHECK(wrong->items[0].error->kind == "exception");
    CHECK(events_of(emu, "token_created").empty());

    const std::vector<jenkins::MintItem> items = {
      { "alice", "rotator-b-000001", 24h },
      { "nobody", "rotator-b-000002", 24h },
      { "bob", "rotator-b-000003", 24h },
    };
    auto m = emu.mint(Variant::helpers, items);
    REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
    CHECK(m->clock.version == "2.547");
    REQUIRE(m->items.size() == 3);
    CHECK(m->items[1].error->kind == "unknown_user");
    REQUIRE(m->items[0].minted.has_value());
    REQUIRE(m->items[2].minted.has_value());
    for (const std::size_t i : { 0U, 2U }) {
      CHECK_FALSE(m->items[i].minted->jenkins_expires_ms.has_value());
      CHECK(m->items[i].minted->jenkins_expires.empty());
    }
    const auto& a = *m->items[0].minted;
    const auto& b = *m->items[2].minted;
    CHECK(events_of(emu, "token_created").size() == 2);
    CHECK(emu.verify("alice", a.token).has_value());
    CHECK(emu.verify("bob", b.token).has_value());

    auto l = emu.list({ "bob", "alice" });
    REQUIRE(l.has_value());
    const auto* tb = find_token(l->users[0], b.uuid);
    REQUIRE(tb != nullptr);
    CHECK(tb->name == "rotator-b-000003");
    CHECK_FALSE(tb->expiration.has_value());
    CHECK(find_token(l->users[1], a.uuid) != nullptr);
    CHECK(find_token(l->users[1], b.uuid) == nullptr);

    auto r = emu.revoke(Variant::helpers,
                        { { "bob", a.uuid }, { "alice", a.uuid }, { "alice", "no-such-uuid" } });
    REQUIRE(r.has_value());
    CHECK(r->items[0].outcome == jenkins::RevokeOutcome::not_found);
    CHECK(r->items[1].outcome == jenkins::RevokeOutcome::revoked);
    CHECK(r->items[2].outcome == jenkins::RevokeOutcome::not_found);
    CHECK(state_tokens(emu, "alice").empty());
    CHECK(state_tokens(emu, "bob").size() == 1);
    CHECK_FALSE(emu.verify("alice", a.token).has_value());
    CHECK(emu.verify("bob", b.token).has_value());
    CHECK(emu.check_only_known_scripts() == 5);

    // The check tells our texts from others: one changed byte beside a real payload.
    auto text = jenkins::render_script("list", { { "users", { "alice" } } });
    REQUIRE(text.has_value());
    text->append("\n");
    REQUIRE(emu
              .run(emu.client().request(
                net::Request::post_form("scriptText", jenkins::script_form(*text), true)))
              .has_value());
    const auto log = emu.scripts();
    REQUIRE(log.size() == 6);
    CHECK(log.back().at("payloads") == 1);
    CHECK(test_emu::known_script_hashes().count(log.back().at("template_sha256")) == 0);
  }

  TEST_CASE("2.250: the token store path saves the user, so tokens and revocations survive a "
            "restart")
  {
    SKIP_WITHOUT_EMULATOR();
    EmulatorProcess emu({ "2.250", "", { "alice", "bob" } });
    emu.create_user("ghost", false);
    REQUIRE(probed_variant(emu) == Variant::store);
    const std::vector<jenkins::MintItem> items = {
      { "alice", "rotator-c-000001", 24h },
      { "ghost", "rotator-c-000002", 24h },
      { "nobody", "rotator-c-000003", 24h },
      { "bob", "rotator-c-000004", 24h },
    };
    auto m = emu.mint(Variant::store, items);
    REQUIRE_MESSAGE(m.has_value(), (m ? "" : m.error().message));
    CHECK(m->clock.version == "2.250");
    CHECK(m->items[2].error->kind == "unknown_user");
    for (const std::size_t i : { 0U, 1U, 3U }) {
      REQUIRE(m->items[i].minted.has_value());
    }
    const auto& a = *m->items[0].minted;
    const auto& g = *m->items[1].minted;
    const auto& b = *m->items[3].minted;
    CHECK(events_of(emu, "token_created").size() == 3);
    auto scripts = emu.check_only_known_scripts();

    emu.restart();
    CHECK(emu.verify("alice", a.token).has_value());
    CHECK(emu.verify("bob", b.token).has_value());
    const auto ghost = emu.verify("ghost", g.token);
    REQUIRE_FALSE(ghost.has_value());
    CHECK(ghost.error().status == 500);
    auto l = emu.list({ "alice", "bob" });
    REQUIRE(l.has_value());
    REQUIRE(find_token(l->users[0], a.uuid) != nullptr);
    CHECK(find_token(l->users[0], a.uuid)->name == "rotator-c-000001");
    CHECK_FALSE(find_token(l->users[0], a.uuid)->expiration.has_value());
    CHECK(find_token(l->users[1], b.uuid) != nullptr);

    auto r = emu.revoke(Variant::store, { { "alice", a.uuid },
                                          { "bob", a.uuid },
                                          { "nobody", b.uuid },
                                          { "alice", "no-such-uuid" } });
    REQUIRE(r.has_value());
    CHECK(r->items[0].outcome == jenkins::RevokeOutcome::revoked);
    CHECK(r->items[1].outcome == jenkins::RevokeOutcome::not_found);
    CHECK(r->items[2].outcome == jenkins::RevokeOutcome::failed);
    CHECK(r->items[3].outcome == jenkins::RevokeOutcome::not_found);
    scripts += emu.check_only_known_scripts();

    emu.restart();
    CHECK(state_tokens(emu, "alice").empty());
    CHECK(state_tokens(emu, "bob").size() == 1);
    CHECK_FALSE(emu.verify("alice", a.token).has_value());
    CHECK(emu.verify("bob", b.token).has_value());
    CHECK(scripts == 4); // probe, mint | list, revoke
  }
}
