#include "crypto/sealed_box.hpp"
#include "support/text.hpp"

#include <doctest/doctest.h>

#include <cstring>

namespace {

using test::as_bytes;

} // namespace

TEST_SUITE("crypto::seal")
{
  TEST_CASE("a sealed box opens with the recipient's key only")
  {
    auto alice = crypto::PrivateKey::generate();
    auto bob = crypto::PrivateKey::generate();
    REQUIRE((alice.has_value() && bob.has_value()));
    const auto plain = as_bytes("11a2b3c4d5e6f708192a3b4c5d6e7f8091");
    auto box = crypto::seal(alice->public_key(), plain);
    REQUIRE(box.has_value());
    CHECK(box->size() == plain.size() + 48);
    auto again = crypto::seal(alice->public_key(), plain);
    REQUIRE(again.has_value());
    CHECK(*again != *box); // a fresh ephemeral key each time

    auto opened = crypto::open_sealed(*alice, *box);
    REQUIRE(opened.has_value());
    CHECK(opened->equals(plain));

    auto wrong = crypto::open_sealed(*bob, *box);
    REQUIRE_FALSE(wrong.has_value());
    CHECK(wrong.error().kind == "open");
  }

  TEST_CASE("flipping any one bit makes the box fail to open")
  {
    auto key = crypto::PrivateKey::generate();
    REQUIRE(key.has_value());
    auto box = crypto::seal(key->public_key(), as_bytes("token"));
    REQUIRE(box.has_value());
    for (std::size_t i = 0; i < box->size(); ++i) {
      auto tampered = *box;
      tampered[i] ^= 0x01;
      CAPTURE(i);
      CHECK_FALSE(crypto::open_sealed(*key, tampered).has_value());
    }
  }

  TEST_CASE("a ciphertext shorter than the overhead is refused")
  {
    auto key = crypto::PrivateKey::generate();
    REQUIRE(key.has_value());
    const std::vector<unsigned char> short_box(47, 0);
    auto r = crypto::open_sealed(*key, short_box);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("shorter") != std::string::npos);
  }

  TEST_CASE("an empty plaintext round-trips")
  {
    auto key = crypto::PrivateKey::generate();
    REQUIRE(key.has_value());
    auto box = crypto::seal(key->public_key(), {});
    REQUIRE(box.has_value());
    auto opened = crypto::open_sealed(*key, *box);
    REQUIRE(opened.has_value());
    CHECK(opened->empty());
  }
}
