#include "crypto/envelope.hpp"
#include "crypto/signing_key.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

namespace {

crypto::Envelope
sealed_envelope()
{
  static const auto deploy = crypto::PrivateKey::generate().value();
  static const auto next = crypto::PrivateKey::generate().value();
  crypto::Envelope info;
  info.controller = "ci";
  info.url = "https://jenkins.example.com/";
  info.user = "svc-deploy";
  info.token_name = "rotator-5f2a9c1e-000042";
  info.token_uuid = "0b1c8e6a-8f4e-4d55-9a51-2f5b0c6d7e8f";
  info.created = "2026-11-27T03:00:12Z";
  info.expires = "2026-12-27T03:00:12Z";
  info.jenkins_expires = "2026-12-28T00:00:00+09:00";
  const std::string token = "11" + std::string(32, 'a');
  auto secret = crypto::SecretBytes::copy_of(
                  { reinterpret_cast<const unsigned char*>(token.data()), token.size() })
                  .value();
  return crypto::Envelope::seal(
           info, secret,
           { { "deploy", deploy.public_key() }, { "deploy-next", next.public_key() } })
    .value();
}

std::span<const unsigned char>
bytes_of(const std::string& s)
{
  return { reinterpret_cast<const unsigned char*>(s.data()), s.size() };
}

} // namespace

TEST_SUITE("crypto::Envelope signatures")
{
  TEST_CASE("a signed envelope verifies, also after to_json and parse")
  {
    const auto key = crypto::SigningKey::generate().value();
    auto env = sealed_envelope();
    env.sign(key);
    REQUIRE(env.signature.has_value());
    CHECK(env.signature->key_id == key.verify_key().key_id());
    CHECK(env.signature->sig.size() == 64);
    CHECK(env.verify(key.verify_key(), "e").has_value());
    const auto json = env.to_json();
    CHECK(json.find(R"(,"signature":{"alg":"ed25519","key_id":")") != std::string::npos);
    auto back = crypto::Envelope::parse(json, "e");
    REQUIRE(back.has_value());
    CHECK(back->verify(key.verify_key(), "e").has_value());
    CHECK(back->to_json() == json);
  }

  TEST_CASE("an unsigned envelope, another key, or any changed field is refused")
  {
    const auto key = crypto::SigningKey::generate().value();
    const auto other = crypto::SigningKey::generate().value();
    auto env = sealed_envelope();
    auto unsigned_env = env;
    auto r = unsigned_env.verify(key.verify_key(), "e");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "unsigned");
    env.sign(key);
    auto by_other = env.verify(other.verify_key(), "e");
    REQUIRE_FALSE(by_other.has_value());
    CHECK(by_other.error().kind == "signature");
    CHECK(by_other.error().message.find("signed by key_id") != std::string::npos);

    using Change = std::function<void(crypto::Envelope&)>;
    const std::vector<std::pair<const char*, Change>> changes = {
      { "controller", [](auto& e) { e.controller = "ci2"; } },
      { "url", [](auto& e) { e.url = "https://evil.example.com/"; } },
      { "user", [](auto& e) { e.user = "svc-other"; } },
      { "token_name", [](auto& e) { e.token_name = "rotator-5f2a9c1e-000043"; } },
      { "token_uuid", [](auto& e) { e.token_uuid[0] = '1'; } },
      { "created", [](auto& e) { e.created = "2026-11-27T03:00:13Z"; } },
      { "expires", [](auto& e) { e.expires = "2027-12-27T03:00:12Z"; } },
      { "jenkins_expires null", [](auto& e) { e.jenkins_expires.reset(); } },
      { "jenkins_expires", [](auto& e) { e.jenkins_expires = "2026-12-29T00:00:00+09:00"; } },
      { "recipient", [](auto& e) { e.sealed[0].recipient = "mallory"; } },
      { "key_id", [](auto& e) { e.sealed[0].key_id = "00000000"; } },
      { "ciphertext", [](auto& e) { e.sealed[1].ciphertext[5] ^= 1; } },
      { "an entry dropped", [](auto& e) { e.sealed.pop_back(); } },
      { "entries swapped", [](auto& e) { std::swap(e.sealed[0], e.sealed[1]); } },
      { "signature byte", [](auto& e) { e.signature->sig[0] ^= 1; } },
    };
    for (const auto& [what, change] : changes) {
      CAPTURE(what);
      auto changed = env;
      change(changed);
      auto v = changed.verify(key.verify_key(), "e");
      REQUIRE_FALSE(v.has_value());
      CHECK(v.error().kind == "signature");
    }
  }

  TEST_CASE("the signed bytes are length-prefixed: moving bytes between fields changes them")
  {
    const auto key = crypto::SigningKey::generate().value();
    auto a = sealed_envelope();
    a.controller = "ab";
    a.url = "c";
    a.sign(key);
    auto b = a;
    b.controller = "a";
    b.url = "bc";
    CHECK(a.signed_bytes() != b.signed_bytes());
    CHECK_FALSE(b.verify(key.verify_key(), "e").has_value());
    const auto bytes = a.signed_bytes();
    const std::string domain(crypto::Envelope::k_signature_domain);
    REQUIRE(bytes.size() > domain.size());
    CHECK(std::string(bytes.begin(), bytes.begin() + static_cast<long>(domain.size())) == domain);
    CHECK(bytes[domain.size()] == 0);
  }

  TEST_CASE("sealing again drops an old signature")
  {
    const auto key = crypto::SigningKey::generate().value();
    auto env = sealed_envelope();
    env.sign(key);
    const auto token = crypto::SecretBytes::copy_of(bytes_of("11" + std::string(32, 'b'))).value();
    auto resealed = crypto::Envelope::seal(
                      env, token, { { "x", crypto::PrivateKey::generate().value().public_key() } })
                      .value();
    CHECK_FALSE(resealed.signature.has_value());
  }

  TEST_CASE("a signature field that is not ed25519 over base64 of 64 bytes is refused")
  {
    const auto key = crypto::SigningKey::generate().value();
    auto env = sealed_envelope();
    env.sign(key);
    const auto json = env.to_json();
    const auto sig_at = json.find(R"("sig":")") + 7;
    for (const auto& bad : { json.substr(0, json.find(R"("alg":"ed25519")")) + R"("alg":"rsa")" +
                               json.substr(json.find(R"("alg":"ed25519")") + 15),
                             json.substr(0, sig_at) + "AAAA" + json.substr(json.find('"', sig_at)),
                             json.substr(0, json.size() - 1) + R"(,"extra":1})" }) {
      CAPTURE(bad);
      CHECK_FALSE(crypto::Envelope::parse(bad, "e").has_value());
    }
  }
}

TEST_SUITE("crypto::SigningKey")
{
  TEST_CASE("key texts round-trip and say their kind")
  {
    const auto key = crypto::SigningKey::generate().value();
    const auto text = key.to_text().value();
    const std::string t(reinterpret_cast<const char*>(text.data()), text.size());
    CHECK(t.starts_with("ed25519-sign:"));
    auto back = crypto::SigningKey::from_text(text.view(), "k").value();
    CHECK(back.verify_key().bytes() == key.verify_key().bytes());
    const auto pub = key.verify_key().to_text();
    CHECK(pub.starts_with("ed25519-verify:"));
    CHECK(pub.size() == 15 + 44);
    auto vk = crypto::VerifyKey::from_text(bytes_of(pub + "\n"), "v").value();
    CHECK(vk.key_id() == key.verify_key().key_id());
  }

  TEST_CASE("a sealing key is never taken for a signing key, nor the other way round")
  {
    const auto x25519 = crypto::PrivateKey::generate().value();
    const auto x_text = x25519.to_base64().value();
    auto as_sign = crypto::SigningKey::from_text(x_text.view(), "k");
    REQUIRE_FALSE(as_sign.has_value());
    CHECK(as_sign.error().message.find("found an X25519 sealing key") != std::string::npos);
    auto as_verify = crypto::VerifyKey::from_text(bytes_of(x25519.public_key().to_base64()), "k");
    REQUIRE_FALSE(as_verify.has_value());
    const auto sign = crypto::SigningKey::generate().value();
    const auto s_text = sign.to_text().value();
    auto as_x = crypto::PrivateKey::from_text(s_text.view(), "k");
    REQUIRE_FALSE(as_x.has_value());
    CHECK(as_x.error().message.find("Ed25519") != std::string::npos);
    CHECK_FALSE(crypto::PublicKey::from_base64(sign.verify_key().to_text(), "k").has_value());
    auto swapped = crypto::VerifyKey::from_text(s_text.view(), "k");
    REQUIRE_FALSE(swapped.has_value());
    CHECK(swapped.error().message.find("a private signing key") != std::string::npos);
  }

  TEST_CASE("key files: the signing key must be 0600, the verify key not writable by others")
  {
    test::TempDir dir;
    const auto key = crypto::SigningKey::generate().value();
    const auto text = key.to_text().value();
    const std::string t(reinterpret_cast<const char*>(text.data()), text.size());
    CHECK(crypto::SigningKey::load(dir.write("s", t + "\n", 0600)).has_value());
    CHECK_FALSE(crypto::SigningKey::load(dir.write("s2", t + "\n", 0640)).has_value());
    const auto pub = key.verify_key().to_text() + "\n";
    CHECK(crypto::VerifyKey::load(dir.write("v", pub, 0644)).has_value());
    CHECK_FALSE(crypto::VerifyKey::load(dir.write("v2", pub, 0666)).has_value());
  }
}
