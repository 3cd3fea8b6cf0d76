#include "crypto/private_key.hpp"
#include "crypto/secret_io.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <string>
#include <sys/stat.h>

TEST_SUITE("crypto::read_secret_file")
{
  const crypto::SecretFileRules k_rules{ "test file", 64, crypto::SecretFileMode::owner_only };

  TEST_CASE("reads a small regular file into locked memory")
  {
    test::TempDir dir;
    auto r = crypto::read_secret_file(dir.write("s", "secret\n", 0600), k_rules);
    REQUIRE(r.has_value());
    CHECK(r->equals(
      std::span<const unsigned char>(reinterpret_cast<const unsigned char*>("secret\n"), 7)));
  }

  TEST_CASE("a FIFO, a directory or /dev/zero is refused without reading (issue 19 #6)")
  {
    test::TempDir dir;
    const auto fifo = dir.path("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Without O_NONBLOCK, open(2) would wait for a writer forever.
    auto r = crypto::read_secret_file(fifo, k_rules);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "test file " + fifo + ": expected a regular file, found a FIFO");
    auto d = crypto::read_secret_file(dir.path(""), k_rules);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().message.find("found a directory") != std::string::npos);
    auto z = crypto::read_secret_file("/dev/zero", k_rules);
    REQUIRE_FALSE(z.has_value());
    CHECK(z.error().message.find("found a device") != std::string::npos);
    // The same through the key loader.
    auto key = crypto::PrivateKey::load(fifo);
    REQUIRE_FALSE(key.has_value());
    CHECK(key.error().message.find("FIFO") != std::string::npos);
  }

  TEST_CASE("the size cap and the mode rule hold")
  {
    test::TempDir dir;
    auto big = crypto::read_secret_file(dir.write("big", std::string(65, 'x'), 0600), k_rules);
    REQUIRE_FALSE(big.has_value());
    CHECK(big.error().message.find("expected at most 64 bytes") != std::string::npos);
    CHECK(
      crypto::read_secret_file(dir.write("cap", std::string(64, 'x'), 0600), k_rules).has_value());
    auto open = crypto::read_secret_file(dir.write("open", "x", 0640), k_rules);
    REQUIRE_FALSE(open.has_value());
    CHECK(open.error().kind == "permission");
    CHECK(open.error().message.find("0640") != std::string::npos);
    const crypto::SecretFileRules readable{ "t", 64,
                                            crypto::SecretFileMode::not_readable_by_others };
    CHECK_FALSE(crypto::read_secret_file(dir.write("r", "x", 0604), readable).has_value());
    CHECK(crypto::read_secret_file(dir.write("ok", "x", 0620), readable).has_value());
    const crypto::SecretFileRules pub{ "t", 64, crypto::SecretFileMode::not_writable_by_others };
    CHECK(crypto::read_secret_file(dir.write("p", "x", 0644), pub).has_value());
    CHECK_FALSE(crypto::read_secret_file(dir.write("w", "x", 0664), pub).has_value());
  }
}
