// The daemon's state key (auth: self): made once 0600, reloaded, seals and opens.
#include "crypto/state_key.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sys/stat.h>

namespace {

std::string
root(const test::TempDir& d)
{
  return std::filesystem::path(d.path("x")).parent_path().string();
}

} // namespace

TEST_SUITE("crypto::StateKey")
{
  TEST_CASE("made on first use 0600, the same key on the next load; values round-trip")
  {
    test::TempDir dir;
    const auto where = crypto::state_key_path("", root(dir));
    CHECK(where.create);
    CHECK(where.path == root(dir) + "/state_key");
    auto key = crypto::StateKey::load(where).value();
    struct stat st
    {};
    REQUIRE(::stat(where.path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto value = crypto::make_token_value().value();
    REQUIRE(value.size() == 34);
    const std::string text(reinterpret_cast<const char*>(value.data()), value.size());
    CHECK(text.starts_with("11"));
    CHECK(std::all_of(text.begin() + 2, text.end(),
                      [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
    const auto sealed = key.seal(value).value();
    CHECK(sealed.find(text) == std::string::npos);
    auto again = crypto::StateKey::load(where).value();
    CHECK(again.open(sealed).value().equals(value));
    // Another key cannot open it.
    test::TempDir other;
    auto stranger = crypto::StateKey::load(crypto::state_key_path("", root(other))).value();
    CHECK_FALSE(stranger.open(sealed).has_value());
  }

  TEST_CASE("a configured key is never made; a systemd credential is preferred to state_dir")
  {
    test::TempDir dir;
    const auto configured = crypto::state_key_path(root(dir) + "/missing", root(dir));
    CHECK_FALSE(configured.create);
    CHECK_FALSE(crypto::StateKey::load(configured).has_value());
    test::TempDir creds;
    REQUIRE(crypto::StateKey::load({ root(creds) + "/state_key", true }).has_value());
    ::setenv("CREDENTIALS_DIRECTORY", root(creds).c_str(), 1);
    const auto from_creds = crypto::state_key_path("", root(dir));
    ::unsetenv("CREDENTIALS_DIRECTORY");
    CHECK(from_creds.path == root(creds) + "/state_key");
    CHECK_FALSE(from_creds.create);
  }
}
