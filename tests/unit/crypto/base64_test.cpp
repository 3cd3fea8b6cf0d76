#include "crypto/base64.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <utility>
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

TEST_SUITE("crypto::base64 (text)")
{
  // The vectors the Groovy payload and JTR-RESULT decoding were tested with (jenkins/base64 was
  // merged into this one).
  TEST_CASE("encoding matches RFC 4648 test vectors and decoding reverses it")
  {
    const std::pair<std::string, std::string> vectors[] = {
      { "", "" },
      { "f", "Zg==" },
      { "fo", "Zm8=" },
      { "foo", "Zm9v" },
      { "foob", "Zm9vYg==" },
      { "fooba", "Zm9vYmE=" },
      { "foobar", "Zm9vYmFy" },
    };
    for (const auto& [plain, coded] : vectors) {
      CHECK(crypto::to_base64(plain) == coded);
      CHECK(crypto::from_base64_text(coded).value() == plain);
    }
    const std::string binary("\x00\xff\xfe\x80 \n", 6);
    CHECK(crypto::from_base64_text(crypto::to_base64(binary)).value() == binary);
  }

  TEST_CASE("anything but canonical padded base64 is refused")
  {
    for (const char* bad : { "Zg", "Zg=", "Z===", "Zh==", "Zm9v!A==", "Zg==Zg==", "Zm 9v" }) {
      CHECK_MESSAGE(!crypto::from_base64_text(bad).has_value(), bad);
    }
  }
}
