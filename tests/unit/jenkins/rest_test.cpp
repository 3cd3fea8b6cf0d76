// The pure parts of the REST path (auth: self): version parsing and the Basic header.
#include "crypto/base64.hpp"
#include "jenkins/rest.hpp"

#include <doctest/doctest.h>

#include <string>

TEST_SUITE("jenkins rest")
{
  TEST_CASE("version_number reads weekly and LTS versions, and nothing else")
  {
    CHECK(jenkins::version_number("2.260") == 2260);
    CHECK(jenkins::version_number("2.555.1") == 2555);
    CHECK(jenkins::version_number("2.2") == 2002);
    CHECK_FALSE(jenkins::version_number(""));
    CHECK_FALSE(jenkins::version_number("jenkins"));
    CHECK_FALSE(jenkins::version_number("2"));
    CHECK_FALSE(jenkins::version_number("2.1000"));
  }

  TEST_CASE("basic_authorization is Basic base64(user:token)")
  {
    const std::string token = "11aaaabbbbccccddddeeeeffff00001111";
    auto secret = crypto::SecretBytes::copy_of(
                    std::span<const unsigned char>(
                      reinterpret_cast<const unsigned char*>(token.data()), token.size()))
                    .value();
    const auto header = jenkins::basic_authorization("svc-a", secret).value();
    CHECK(std::string(header.begin(), header.end()) ==
          "Basic " + crypto::to_base64(std::string_view("svc-a:" + token)));
  }
}
