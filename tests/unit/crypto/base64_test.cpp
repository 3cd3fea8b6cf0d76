#include "crypto/base64.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

TEST_SUITE("crypto::base64")
{
  TEST_CASE("round-trips every length up to three blocks, with padding")
  {
    std::vector<unsigned char> bytes;
    for (int n = 0; n < 10; ++n) {
      const auto text = crypto::to_base64(bytes);
      CHECK(text.size() % 4 == 0);
      auto back = crypto::from_base64(text);
      REQUIRE(back.has_value());
      CHECK(*back == bytes);
      bytes.push_back(static_cast<unsigned char>(0xf0 + n));
    }
    CHECK(crypto::to_base64(std::vector<unsigned char>{ 0xfb, 0xff }) == "+/8=");
  }

  TEST_CASE("decoding is strict")
  {
    for (const char* bad : { "+/8", "+/8=\n", " +/8=", "-_8=", "+/9=", "====", "+/8=+/8=x" }) {
      CAPTURE(bad);
      auto r = crypto::from_base64(bad);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == "base64");
    }
  }

  TEST_CASE("the secret variants agree with the plain ones")
  {
    const std::vector<unsigned char> bytes{ 1, 2, 3, 250, 251 };
    auto text = crypto::to_base64_secret(bytes);
    REQUIRE(text.has_value());
    const auto plain = crypto::to_base64(bytes);
    CHECK(text->size() == plain.size());
    CHECK(std::memcmp(text->data(), plain.data(), plain.size()) == 0);
    auto back = crypto::from_base64_secret(text->view());
    REQUIRE(back.has_value());
    CHECK(back->equals(bytes));
  }
}
