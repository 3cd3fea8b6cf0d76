// Our token names and their MAC (DESIGN §2.1, issue 19 #2).
#include "crypto/name_mac.hpp"
#include "rotation/token_name.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

const std::string k_key(64, 'a');
const std::string k_other_key = std::string(63, 'a') + "b";

} // namespace

TEST_SUITE("rotation::token_name")
{
  TEST_CASE("a minted name parses back with its instance, seq and MAC")
  {
    const auto name = rotation::make_token_name("rotator-", "5f2a9c1e", k_key, "ci", "svc-a", 42);
    REQUIRE(name.has_value());
    CHECK(name->starts_with("rotator-5f2a9c1e-000042-"));
    CHECK(name->size() == std::string("rotator-5f2a9c1e-000042-").size() + 16);
    const auto parsed = rotation::parse_token_name(*name, "rotator-");
    REQUIRE(parsed);
    CHECK(parsed->instance == "5f2a9c1e");
    CHECK(parsed->seq == 42);
    REQUIRE(parsed->mac);
    CHECK(rotation::genuine_token_name(*parsed, k_key, "ci", "svc-a"));
  }

  TEST_CASE("the MAC depends on the key and on every field")
  {
    const auto mac = crypto::name_mac(k_key, { "5f2a9c1e", "ci", "svc-a", 42 }).value();
    CHECK(mac.size() == 16);
    CHECK(crypto::name_mac(k_key, { "5f2a9c1e", "ci", "svc-a", 42 }).value() == mac);
    CHECK(crypto::name_mac(k_other_key, { "5f2a9c1e", "ci", "svc-a", 42 }).value() != mac);
    CHECK(crypto::name_mac(k_key, { "5f2a9c1f", "ci", "svc-a", 42 }).value() != mac);
    CHECK(crypto::name_mac(k_key, { "5f2a9c1e", "cd", "svc-a", 42 }).value() != mac);
    CHECK(crypto::name_mac(k_key, { "5f2a9c1e", "ci", "svc-b", 42 }).value() != mac);
    CHECK(crypto::name_mac(k_key, { "5f2a9c1e", "ci", "svc-a", 43 }).value() != mac);
    // Length prefixes: moving a character from one field to the next changes the input.
    CHECK(crypto::name_mac(k_key, { "5f2a9c1e", "cis", "vc-a", 42 }).value() != mac);
    CHECK_FALSE(crypto::name_mac("not a key", { "5f2a9c1e", "ci", "svc-a", 42 }).has_value());
    CHECK_FALSE(crypto::name_mac_ok(k_key, { "5f2a9c1e", "ci", "svc-a", 42 }, "0123456789abcdef"));
    CHECK(crypto::name_mac_ok(k_key, { "5f2a9c1e", "ci", "svc-a", 42 }, mac));
  }

  TEST_CASE("legacy names parse without a MAC and are never genuine")
  {
    const auto parsed = rotation::parse_token_name("rotator-5f2a9c1e-000042", "rotator-");
    REQUIRE(parsed);
    CHECK(parsed->seq == 42);
    CHECK_FALSE(parsed->mac);
    CHECK_FALSE(rotation::genuine_token_name(*parsed, k_key, "ci", "svc-a"));
  }

  TEST_CASE("names not shaped like ours do not parse")
  {
    for (const char* name : {
           "laptop",
           "rotator-5f2a9c1e",
           "rotator-5f2a9c1e-00042",                   // seq shorter than 6 digits
           "rotator-5F2A9C1E-000042",                  // upper-case instance
           "rotator-5f2a9c1e-000042-0123",             // a short MAC
           "rotator-5f2a9c1e-000042-0123456789ABCDEF", // upper-case MAC
           "rotator-5f2a9c1e-000042-0123456789abcdef-x",
           "rotator-5f2a9c1e-0000000000000000042", // 19 digits
           "other-5f2a9c1e-000042",
         }) {
      CHECK_MESSAGE(!rotation::parse_token_name(name, "rotator-"), name);
    }
  }
}
