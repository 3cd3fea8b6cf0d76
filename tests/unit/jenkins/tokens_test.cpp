#include "crypto/base64.hpp"
#include "jenkins/script.hpp"
#include "jenkins/tokens.hpp"
#include "net/http_client.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

const std::string k_token_a = "11" + std::string(32, 'a');
const std::string k_token_b = "11" + std::string(16, '0') + std::string(16, 'f');

nlohmann::json
clock_doc()
{
  return { { "version", "2.560" }, { "now_ms", 1764000000000 }, { "zone", "Asia/Tokyo" } };
}

std::string
result_line(const nlohmann::json& doc)
{
  return std::string(jenkins::k_result_marker) + crypto::to_base64(doc.dump()) + "\n";
}

net::Response
response(const std::string& text)
{
  net::Response r;
  r.status = 200;
  r.body.assign(text.begin(), text.end());
  return r;
}

// A mint answer for three items: 0 and 2 minted, 1 an unknown user.
nlohmann::json
three_items()
{
  auto doc = clock_doc();
  doc["items"] = {
    { { "index", 0 },
      { "uuid", "u-0" },
      { "jenkins_expires_ms", 1764100800000 },
      { "jenkins_expires", "2025-11-26T00:00:00+09:00" } },
    { { "index", 1 }, { "error", "unknown_user" }, { "message", "no such user" } },
    { { "index", 2 }, { "uuid", "u-2" } },
  };
  return doc;
}

std::string
text_of(const crypto::SecretBytes& s)
{
  return { reinterpret_cast<const char*>(s.data()), s.size() };
}

net::Failure
mint_failure(const std::string& text, std::size_t count = 3)
{
  auto r = jenkins::read_mint_answer(response(text), count, "ci");
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

} // namespace

TEST_SUITE("jenkins::read_mint_answer")
{
  TEST_CASE("each item answers on its own and tokens are matched by index, in any order")
  {
    const auto text = "JTR-TOKEN:2:" + k_token_b + "\r\nJTR-TOKEN:0:" + k_token_a + "\n" +
                      result_line(three_items()) + "Result: null\n";
    auto r = jenkins::read_mint_answer(response(text), 3, "ci");
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    CHECK(r->clock.version == "2.560");
    CHECK(r->clock.zone == "Asia/Tokyo");
    CHECK(r->clock.now_ms == 1764000000000);
    REQUIRE(r->items.size() == 3);
    REQUIRE(r->items[0].minted.has_value());
    CHECK(r->items[0].minted->uuid == "u-0");
    CHECK(text_of(r->items[0].minted->token) == k_token_a);
    CHECK(r->items[0].minted->jenkins_expires_ms == 1764100800000);
    CHECK(r->items[0].minted->jenkins_expires == "2025-11-26T00:00:00+09:00");
    CHECK_FALSE(r->items[1].minted.has_value());
    CHECK(r->items[1].error->kind == "unknown_user");
    REQUIRE(r->items[2].minted.has_value());
    CHECK(text_of(r->items[2].minted->token) == k_token_b);
    CHECK_FALSE(r->items[2].minted->jenkins_expires_ms.has_value());
  }

  TEST_CASE("token lines that disagree with the items fail the whole answer, quoting no token")
  {
    const auto doc = result_line(three_items());
    const std::string a0 = "JTR-TOKEN:0:" + k_token_a + "\n";
    const std::string b2 = "JTR-TOKEN:2:" + k_token_b + "\n";
    struct Case
    {
      const char* what;
      std::string text;
    };
    const Case cases[] = {
      { "a token beside an item error", a0 + "JTR-TOKEN:1:" + k_token_b + "\n" + b2 + doc },
      { "a uuid without a token line", a0 + doc },
      { "a token line twice", a0 + a0 + b2 + doc },
      { "a token line past the last item", a0 + b2 + "JTR-TOKEN:3:" + k_token_b + "\n" + doc },
      { "an upper-case token", "JTR-TOKEN:0:11" + std::string(32, 'A') + "\n" + b2 + doc },
      { "a short token", "JTR-TOKEN:0:" + k_token_a.substr(1) + "\n" + b2 + doc },
      { "no index", "JTR-TOKEN::" + k_token_a + "\n" + b2 + doc },
      { "a signed index", "JTR-TOKEN:+0:" + k_token_a + "\n" + b2 + doc },
    };
    for (const auto& c : cases) {
      INFO(c.what);
      const auto f = mint_failure(c.text);
      CHECK(f.kind == net::FailureKind::bad_output);
      CHECK(f.message.starts_with("ci: "));
      CHECK(f.message.find(k_token_a.substr(2)) == std::string::npos);
      CHECK(f.message.find(k_token_b.substr(2)) == std::string::npos);
    }
  }

  TEST_CASE("a token line for an item that names no uuid fails the whole answer")
  {
    auto doc = three_items();
    doc["items"][2].erase("uuid");
    const auto f = mint_failure("JTR-TOKEN:0:" + k_token_a + "\nJTR-TOKEN:2:" + k_token_b + "\n" +
                                result_line(doc));
    CHECK(f.kind == net::FailureKind::bad_output);
    CHECK(f.message.find("item 2") != std::string::npos);
  }

  TEST_CASE("items out of order, too few items or no clock are bad_output")
  {
    const std::string tokens = "JTR-TOKEN:0:" + k_token_a + "\nJTR-TOKEN:2:" + k_token_b + "\n";
    auto swapped = three_items();
    std::swap(swapped["items"][0], swapped["items"][2]);
    CHECK(mint_failure(tokens + result_line(swapped)).kind == net::FailureKind::bad_output);
    CHECK(mint_failure(tokens + result_line(three_items()), 4).kind ==
          net::FailureKind::bad_output);
    auto no_zone = three_items();
    no_zone.erase("zone");
    CHECK(mint_failure(tokens + result_line(no_zone)).kind == net::FailureKind::bad_output);
  }

  TEST_CASE("a script that threw after printing tokens is a script_error that quotes none")
  {
    const auto text =
      "JTR-TOKEN:0:" + k_token_a +
      "\njava.lang.IllegalStateException: boom\n\tat Script1.run(Script1.groovy:9)\n";
    const auto f = mint_failure(text);
    CHECK(f.kind == net::FailureKind::script_error);
    CHECK(f.message.find("boom") != std::string::npos);
    CHECK(f.message.find(k_token_a.substr(2)) == std::string::npos);
  }
}

TEST_SUITE("jenkins::read_revoke_answer")
{
  TEST_CASE("outcomes map item by item; an error item is failed")
  {
    auto doc = clock_doc();
    doc["items"] = { { { "index", 0 }, { "outcome", "revoked" } },
                     { { "index", 1 }, { "outcome", "not_found" } },
                     { { "index", 2 }, { "error", "unknown_user" }, { "message", "no such user" } },
                     { { "index", 3 } } };
    auto r = jenkins::read_revoke_answer(result_line(doc), 4, "ci");
    REQUIRE(r.has_value());
    CHECK(r->items[0].outcome == jenkins::RevokeOutcome::revoked);
    CHECK(r->items[1].outcome == jenkins::RevokeOutcome::not_found);
    CHECK(r->items[2].outcome == jenkins::RevokeOutcome::failed);
    CHECK(r->items[2].error->kind == "unknown_user");
    CHECK(r->items[3].outcome == jenkins::RevokeOutcome::failed);
    CHECK(r->items[3].error->kind == "missing");
  }

  TEST_CASE("items out of order are bad_output: outcomes must not land on other tokens")
  {
    auto doc = clock_doc();
    doc["items"] = { { { "index", 1 }, { "outcome", "revoked" } },
                     { { "index", 0 }, { "outcome", "not_found" } } };
    auto r = jenkins::read_revoke_answer(result_line(doc), 2, "ci");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::bad_output);
  }
}

TEST_SUITE("jenkins::read_list_answer")
{
  TEST_CASE("tokens and per-user errors are read in request order")
  {
    auto doc = clock_doc();
    doc["usage_statistics"] = true;
    doc["users"] = {
      { { "index", 0 },
        { "user", "alice" },
        { "tokens",
          { { { "uuid", "u-1" },
              { "name", "rotator-1" },
              { "created_ms", 1764000000000 },
              { "expiration", "2025-12-24" },
              { "expired", false },
              { "use_counter", 3 },
              { "last_use_ms", 1764000001000 },
              { "legacy", false } } } } },
      { { "index", 1 }, { "user", "nobody" }, { "error", "unknown_user" }, { "message", "x" } },
    };
    const std::vector<std::string> users = { "alice", "nobody" };
    auto r = jenkins::read_list_answer(result_line(doc), users, "ci");
    REQUIRE(r.has_value());
    CHECK(r->usage_statistics == true);
    REQUIRE(r->users[0].tokens.size() == 1);
    const auto& t = r->users[0].tokens[0];
    CHECK(t.uuid == "u-1");
    CHECK(t.expiration == "2025-12-24");
    CHECK(t.use_counter == 3);
    CHECK(t.last_use_ms == 1764000001000);
    CHECK(r->users[1].error->kind == "unknown_user");
    CHECK(r->users[1].tokens.empty());
  }
}

TEST_SUITE("jenkins::render_script input")
{
  TEST_CASE("a name that is not UTF-8 is refused, not mangled")
  {
    const nlohmann::json input = { { "users", { std::string("bad\xff\xfe") } } };
    auto r = jenkins::render_script("list", input);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "bad_input");
    CHECK(r.error().message.find("list") != std::string::npos);
  }
}
