#include "crypto/base64.hpp"
#include "crypto/private_key.hpp"
#include "crypto/public_key.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <openssl/sha.h>

#include <array>
#include <string>

namespace {

std::vector<unsigned char>
from_hex(const std::string& hex)
{
  std::vector<unsigned char> out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<unsigned char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

crypto::PrivateKey
key_from_hex(const std::string& hex)
{
  auto bytes = crypto::SecretBytes::copy_of(from_hex(hex));
  REQUIRE(bytes.has_value());
  auto key = crypto::PrivateKey::from_bytes(std::move(*bytes));
  REQUIRE(key.has_value());
  return std::move(*key);
}

std::string
b64(const std::string& hex)
{
  return crypto::to_base64(from_hex(hex));
}

// RFC 7748 §6.1: Alice's X25519 key pair.
const std::string k_alice_private =
  "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const std::string k_alice_public =
  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

} // namespace

TEST_SUITE("crypto::PublicKey")
{
  TEST_CASE("key_id is the first 8 hex digits of SHA-256 of the key, as OpenSSL computes it")
  {
    const auto key = key_from_hex(k_alice_private).public_key();
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256(key.bytes().data(), key.bytes().size(), digest.data());
    CHECK(key.key_id() ==
          fmt::format("{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3]));
  }

  TEST_CASE("loads one line of base64, with or without a trailing newline")
  {
    test::TempDir dir;
    const auto text = b64(k_alice_public);
    for (const auto& content : { text, text + "\n" }) {
      auto key = crypto::PublicKey::load(dir.write("deploy.pub", content, 0644));
      REQUIRE(key.has_value());
      CHECK(key->to_base64() == text);
    }
  }

  TEST_CASE("a public key file writable by group or others is refused, naming file and mode")
  {
    test::TempDir dir;
    for (const mode_t mode : { 0664, 0646, 0666 }) {
      const auto path = dir.write("deploy.pub", b64(k_alice_public) + "\n", mode);
      auto key = crypto::PublicKey::load(path);
      REQUIRE_FALSE(key.has_value());
      CHECK(key.error().kind == "permission");
      CHECK(key.error().message.find(path) != std::string::npos);
      CHECK(key.error().message.find(fmt::format("{:04o}", mode)) != std::string::npos);
    }
  }

  TEST_CASE("malformed key files get clear errors that name the file and hold no key material")
  {
    test::TempDir dir;
    const auto text = b64(k_alice_public);
    const struct
    {
      std::string content;
      std::string expected;
    } cases[] = {
      { "", "found nothing" },
      { "\n", "found nothing" },
      { text + "\n\n", "more than one line" },
      { text + "\n" + text + "\n", "more than one line" },
      { text + "\r\n", "not standard base64" },
      { " " + text, "not standard base64" },
      { text.substr(0, 43), "not standard base64" },
      { b64(k_alice_public.substr(0, 62)), "found base64 of 31 bytes" },
      { b64(k_alice_public + "00"), "found base64 of 33 bytes" },
    };
    for (const auto& c : cases) {
      CAPTURE(c.content);
      const auto path = dir.write("bad.pub", c.content, 0644);
      auto key = crypto::PublicKey::load(path);
      REQUIRE_FALSE(key.has_value());
      CHECK(key.error().message.find(path) != std::string::npos);
      CHECK(key.error().message.find(c.expected) != std::string::npos);
      CHECK(key.error().message.find(text.substr(0, 12)) == std::string::npos);
    }
  }

  TEST_CASE("a missing file or a directory is an error naming the path")
  {
    test::TempDir dir;
    auto missing = crypto::PublicKey::load(dir.path("nope.pub"));
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find("nope.pub: cannot open") != std::string::npos);
    auto directory = crypto::PublicKey::load(dir.path(""));
    REQUIRE_FALSE(directory.has_value());
    CHECK(directory.error().message.find("expected a regular file") != std::string::npos);
  }
}

TEST_SUITE("crypto::PrivateKey")
{
  TEST_CASE("derives the RFC 7748 public key")
  {
    CHECK(key_from_hex(k_alice_private).public_key().to_base64() == b64(k_alice_public));
  }

  TEST_CASE("generate gives a key whose public half matches a fresh derivation")
  {
    auto a = crypto::PrivateKey::generate();
    auto b = crypto::PrivateKey::generate();
    REQUIRE((a.has_value() && b.has_value()));
    CHECK_FALSE(a->public_key() == b->public_key());
    auto copy = crypto::SecretBytes::copy_of(a->view());
    REQUIRE(copy.has_value());
    auto again = crypto::PrivateKey::from_bytes(std::move(*copy));
    REQUIRE(again.has_value());
    CHECK(again->public_key() == a->public_key());
  }

  TEST_CASE("a private key file must be 0600 or stricter")
  {
    test::TempDir dir;
    const auto text = b64(k_alice_private) + "\n";
    for (const mode_t ok : { 0600, 0400 }) {
      auto key = crypto::PrivateKey::load(dir.write("ok.key", text, ok));
      REQUIRE(key.has_value());
      CHECK(key->public_key().to_base64() == b64(k_alice_public));
    }
    for (const mode_t bad : { 0644, 0640, 0604, 0660, 0700 }) {
      const auto path = dir.write("bad.key", text, bad);
      auto key = crypto::PrivateKey::load(path);
      REQUIRE_FALSE(key.has_value());
      CHECK(key.error().kind == "permission");
      CHECK(key.error().message.find(path) != std::string::npos);
      CHECK(key.error().message.find(fmt::format("found mode {:04o}", bad)) != std::string::npos);
      CHECK(key.error().message.find(text.substr(0, 12)) == std::string::npos);
    }
  }

  TEST_CASE("to_base64 gives back the key-file text")
  {
    auto text = key_from_hex(k_alice_private).to_base64();
    REQUIRE(text.has_value());
    const auto expected = b64(k_alice_private);
    CHECK(
      text->equals({ reinterpret_cast<const unsigned char*>(expected.data()), expected.size() }));
  }

  TEST_CASE("from_bytes wants exactly 32 bytes")
  {
    auto short_key = crypto::SecretBytes::allocate(31);
    REQUIRE(short_key.has_value());
    auto key = crypto::PrivateKey::from_bytes(std::move(*short_key));
    REQUIRE_FALSE(key.has_value());
    CHECK(key.error().message.find("found 31 bytes") != std::string::npos);
  }
}
