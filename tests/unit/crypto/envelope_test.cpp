#include "crypto/base64.hpp"
#include "crypto/envelope.hpp"
#include "support/text.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>
#include <string>

namespace {

using test::as_bytes;

using Json = nlohmann::ordered_json;

crypto::Envelope
info()
{
  crypto::Envelope e;
  e.controller = "ci";
  e.url = "https://jenkins.example.com/";
  e.user = "svc-deploy";
  e.token_name = "rotator-5f2a9c1e-000042";
  e.token_uuid = "0b1c8e6a-8f4e-4d55-9a51-2f5b0c6d7e8f";
  e.created = "2026-11-27T03:00:12Z";
  e.expires = "2026-12-27T03:00:12Z";
  e.jenkins_expires = "2026-12-28T00:00:00+09:00";
  return e;
}

struct Fixture
{
  crypto::PrivateKey deploy = crypto::PrivateKey::generate().value();
  crypto::PrivateKey next = crypto::PrivateKey::generate().value();
  crypto::SecretBytes token = crypto::SecretBytes::copy_of(as_bytes("11aa22bb33cc44dd")).value();

  crypto::Envelope sealed() const
  {
    return crypto::Envelope::seal(
             info(), token,
             { { "deploy", deploy.public_key() }, { "deploy-next", next.public_key() } })
      .value();
  }
};

// Parses the JSON of a fresh envelope after `edit`, expecting an error of `kind` whose
// message contains `text`.
void
check_rejected(const std::function<void(Json&)>& edit, const std::string& kind,
               const std::string& text)
{
  Fixture f;
  auto j = Json::parse(f.sealed().to_json());
  edit(j);
  auto r = crypto::Envelope::parse(j.dump(), "env.json");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == kind);
  CHECK(r.error().message.find(text) != std::string::npos);
  CHECK(r.error().message.starts_with("env.json: "));
}

} // namespace

TEST_SUITE("crypto::Envelope")
{
  TEST_CASE("to_json writes the fields of DESIGN §6 in their order")
  {
    Fixture f;
    const auto env = f.sealed();
    const auto j = Json::parse(env.to_json());
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) {
      keys.push_back(k);
    }
    CHECK(keys == std::vector<std::string>{ "format", "controller", "url", "user", "token_name",
                                            "token_uuid", "created", "expires", "jenkins_expires",
                                            "sealed" });
    CHECK(j["format"] == "jenkins-token-rotator/v1");
    CHECK(j["jenkins_expires"] == "2026-12-28T00:00:00+09:00");
    REQUIRE(j["sealed"].size() == 2);
    std::vector<std::string> entry_keys;
    for (const auto& [k, v] : j["sealed"][0].items()) {
      entry_keys.push_back(k);
    }
    CHECK(entry_keys == std::vector<std::string>{ "recipient", "key_id", "alg", "ciphertext" });
    CHECK(j["sealed"][0]["recipient"] == "deploy");
    CHECK(j["sealed"][0]["key_id"] == f.deploy.public_key().key_id());
    CHECK(j["sealed"][1]["recipient"] == "deploy-next");
    CHECK(j["sealed"][1]["key_id"] == f.next.public_key().key_id());
    CHECK(j["sealed"][1]["alg"] == "crypto_box_seal");
    CHECK(env.to_json().find('\n') == std::string::npos);
  }

  TEST_CASE("parse reads back what to_json wrote, and each recipient opens its entry")
  {
    Fixture f;
    const auto env = f.sealed();
    auto back = crypto::Envelope::parse(env.to_json(), "env.json");
    REQUIRE(back.has_value());
    CHECK(back->to_json() == env.to_json());
    CHECK(back->token_uuid == env.token_uuid);
    for (const auto* key : { &f.deploy, &f.next }) {
      auto token = back->open(*key, "env.json");
      REQUIRE(token.has_value());
      CHECK(token->equals(f.token));
    }
  }

  TEST_CASE("jenkins_expires null round-trips as null")
  {
    Fixture f;
    auto i = info();
    i.jenkins_expires.reset();
    auto env = crypto::Envelope::seal(i, f.token, { { "deploy", f.deploy.public_key() } });
    REQUIRE(env.has_value());
    CHECK(Json::parse(env->to_json())["jenkins_expires"].is_null());
    auto back = crypto::Envelope::parse(env->to_json(), "env.json");
    REQUIRE(back.has_value());
    CHECK_FALSE(back->jenkins_expires.has_value());
  }

  TEST_CASE("a key with no entry gets no_key, listing who the envelope is for")
  {
    Fixture f;
    auto other = crypto::PrivateKey::generate();
    REQUIRE(other.has_value());
    auto r = f.sealed().open(*other, "env.json");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "no_key");
    CHECK(r.error().message.find(other->public_key().key_id()) != std::string::npos);
    CHECK(r.error().message.find("deploy (" + f.deploy.public_key().key_id() + ")") !=
          std::string::npos);
  }

  TEST_CASE("a tampered ciphertext gets open, naming the entry")
  {
    Fixture f;
    auto env = f.sealed();
    env.sealed[1].ciphertext[60] ^= 0x40;
    auto r = crypto::Envelope::parse(env.to_json(), "env.json")->open(f.next, "env.json");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "open");
    CHECK(r.error().message.find("sealed[1] (recipient deploy-next") != std::string::npos);
    CHECK(r.error().message.find("tampered") != std::string::npos);
    // The other entry is intact.
    CHECK(env.open(f.deploy, "env.json").has_value());
  }

  TEST_CASE("a number too large for a double is malformed JSON, not an exception (fuzz finding)")
  {
    const auto r = crypto::Envelope::parse("444444202e2222", "env.json");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("malformed JSON") != std::string::npos);
    const auto inside = crypto::Envelope::parse(R"({"v":1e999})", "env.json");
    REQUIRE_FALSE(inside.has_value());
  }

  TEST_CASE("malformed JSON and non-objects are refused")
  {
    for (const char* bad : { "", "{", "{\"format\": }", "[1,2]", "null", "{} trailing" }) {
      CAPTURE(bad);
      auto r = crypto::Envelope::parse(bad, "env.json");
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().message.starts_with("env.json: "));
    }
    CHECK(crypto::Envelope::parse("{", "env.json").error().kind == "json");
    CHECK(crypto::Envelope::parse("{", "env.json").error().message.find("malformed JSON") !=
          std::string::npos);
    CHECK(
      crypto::Envelope::parse("[1]", "env.json").error().message.find("expected a JSON object") !=
      std::string::npos);
  }

  TEST_CASE("an unknown format is its own error")
  {
    check_rejected([](Json& j) { j["format"] = "jenkins-token-rotator/v2"; }, "format",
                   "unknown format \"jenkins-token-rotator/v2\"");
    check_rejected([](Json& j) { j.erase("format"); }, "envelope", "format: missing");
    check_rejected([](Json& j) { j["format"] = 1; }, "envelope", "format: expected a string");
  }

  TEST_CASE("every field is required")
  {
    for (const char* field : { "controller", "url", "user", "token_name", "token_uuid", "created",
                               "expires", "jenkins_expires", "sealed" }) {
      CAPTURE(field);
      check_rejected([&](Json& j) { j.erase(field); }, "envelope",
                     std::string(field) + ": missing");
    }
    for (const char* field : { "recipient", "key_id", "alg", "ciphertext" }) {
      CAPTURE(field);
      check_rejected([&](Json& j) { j["sealed"][1].erase(field); }, "envelope",
                     std::string("sealed[1].") + field + ": missing");
    }
  }

  TEST_CASE("mistyped and empty fields are refused, naming the path")
  {
    check_rejected([](Json& j) { j["user"] = 42; }, "envelope",
                   "user: expected a string, found number");
    check_rejected([](Json& j) { j["controller"] = ""; }, "envelope",
                   "controller: expected a non-empty string");
    check_rejected([](Json& j) { j["jenkins_expires"] = true; }, "envelope",
                   "jenkins_expires: expected a string or null, found boolean");
    check_rejected([](Json& j) { j["sealed"] = "x"; }, "envelope",
                   "sealed: expected an array, found string");
    check_rejected([](Json& j) { j["sealed"][0] = 3; }, "envelope",
                   "sealed[0]: expected an object, found number");
    check_rejected([](Json& j) { j["sealed"][0]["ciphertext"] = nullptr; }, "envelope",
                   "sealed[0].ciphertext: expected a string, found null");
    check_rejected([](Json& j) { j["sealed"][0]["key_id"] = "ABCDEF01"; }, "envelope",
                   "sealed[0].key_id: expected 8 lowercase hex digits");
  }

  TEST_CASE("timestamps must be RFC 3339")
  {
    for (const char* bad : { "2026-11-27 03:00:12Z", "2026-11-27T03:00:12", "2026-13-01T00:00:00Z",
                             "2026-11-27T03:00:12+0900", "2026-11-27t03:00:12z", "tomorrow" }) {
      CAPTURE(bad);
      check_rejected([&](Json& j) { j["created"] = bad; }, "envelope",
                     "created: expected an RFC 3339 timestamp");
    }
    check_rejected([](Json& j) { j["jenkins_expires"] = "2026-12-28"; }, "envelope",
                   "jenkins_expires: expected an RFC 3339 timestamp");
    Fixture f;
    auto j = Json::parse(f.sealed().to_json());
    j["expires"] = "2026-12-27T03:00:12.250-05:30";
    CHECK(crypto::Envelope::parse(j.dump(), "env.json").has_value());
  }

  TEST_CASE("an empty sealed list, a wrong alg, bad base64 and unknown fields are refused")
  {
    check_rejected([](Json& j) { j["sealed"] = Json::array(); }, "envelope",
                   "sealed: expected at least one sealed entry, found an empty list");
    check_rejected([](Json& j) { j["sealed"][1]["alg"] = "crypto_box_easy"; }, "alg",
                   "sealed[1].alg: unsupported algorithm: expected \"crypto_box_seal\", found "
                   "\"crypto_box_easy\"");
    check_rejected([](Json& j) { j["sealed"][0]["ciphertext"] = "not base64!"; }, "envelope",
                   "sealed[0].ciphertext: expected standard base64");
    check_rejected(
      [](Json& j) {
        auto c = j["sealed"][0]["ciphertext"].get<std::string>();
        j["sealed"][0]["ciphertext"] = c.substr(0, c.size() - 1);
      },
      "envelope", "sealed[0].ciphertext: expected standard base64");
    check_rejected([](Json& j) { j["token"] = "x"; }, "envelope", "unknown field \"token\"");
    check_rejected([](Json& j) { j["sealed"][0]["nonce"] = "x"; }, "envelope",
                   "sealed[0]: unknown field \"nonce\"");
  }

  TEST_CASE("a field given twice is refused, at any depth")
  {
    Fixture f;
    auto text = f.sealed().to_json();
    auto twice = text;
    twice.insert(1, "\"user\":\"someone-else\",");
    auto r = crypto::Envelope::parse(twice, "env.json");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "env.json: duplicate field \"user\": each field may appear once");
    auto nested = text;
    nested.insert(nested.find("\"recipient\""), "\"alg\":\"crypto_box_seal\",");
    r = crypto::Envelope::parse(nested, "env.json");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("duplicate field \"alg\"") != std::string::npos);
    // The same name in two different objects is fine.
    CHECK(crypto::Envelope::parse(text, "env.json").has_value());
  }

  TEST_CASE("seal refuses what it could not write faithfully")
  {
    Fixture f;
    const std::vector<crypto::Recipient> one{ { "deploy", f.deploy.public_key() } };
    CHECK(crypto::Envelope::seal(info(), f.token, {}).error().message.find("no recipients") !=
          std::string::npos);
    auto i = info();
    i.created = "yesterday";
    CHECK(crypto::Envelope::seal(i, f.token, one).error().message.find("RFC 3339") !=
          std::string::npos);
    i = info();
    i.user = "";
    CHECK(crypto::Envelope::seal(i, f.token, one).error().message.find("user") !=
          std::string::npos);
    i = info();
    i.token_name = "bad\xff";
    CHECK(crypto::Envelope::seal(i, f.token, one).error().message.find("UTF-8") !=
          std::string::npos);
  }
}
