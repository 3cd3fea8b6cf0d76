#include "crypto/envelope.hpp"
#include "crypto/private_key.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <sodium.h>

#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace {

// A consumer nobody here wrote: PyNaCl (Debian python3-nacl) reads our envelope, checks the
// field order and each key_id with hashlib, opens every entry with SealedBox and prints
// "recipient plaintext-hex" per entry.
constexpr const char* k_consumer = R"(
import base64, hashlib, json, sys
from nacl.public import PrivateKey, SealedBox
env = json.load(open(sys.argv[1]))
assert list(env) == ["format", "controller", "url", "user", "token_name", "token_uuid",
                     "created", "expires", "jenkins_expires", "sealed"], list(env)
assert env["format"] == "jenkins-token-rotator/v1"
keys = [PrivateKey(base64.b64decode(open(p).read().rstrip("\n"), validate=True)) for p in sys.argv[2:]]
for entry, key in zip(env["sealed"], keys, strict=True):
    assert list(entry) == ["recipient", "key_id", "alg", "ciphertext"], list(entry)
    assert entry["alg"] == "crypto_box_seal"
    assert entry["key_id"] == hashlib.sha256(bytes(key.public_key)).hexdigest()[:8]
    plain = SealedBox(key).decrypt(base64.b64decode(entry["ciphertext"], validate=True))
    print(entry["recipient"], plain.hex())
)";

std::string
run(const std::string& command)
{
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[512];
  while (const auto n = std::fread(buf, 1, sizeof buf, p)) {
    out.append(buf, n);
  }
  const int status = ::pclose(p);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return out;
}

std::string
hex(std::span<const unsigned char> bytes)
{
  std::string out;
  for (const auto b : bytes) {
    out += fmt::format("{:02x}", b);
  }
  return out;
}

} // namespace

TEST_SUITE("crypto::Envelope interop")
{
  TEST_CASE("PyNaCl's SealedBox opens every entry of an envelope we sealed")
  {
    test::TempDir dir;
    auto deploy = crypto::PrivateKey::generate().value();
    auto next = crypto::PrivateKey::generate().value();
    auto token = crypto::SecretBytes::allocate(33).value();
    randombytes_buf(token.data(), token.size());

    crypto::Envelope info;
    info.controller = "ci";
    info.url = "https://jenkins.example.com/";
    info.user = "svc-deploy";
    info.token_name = "rotator-5f2a9c1e-000042";
    info.token_uuid = "0b1c8e6a-8f4e-4d55-9a51-2f5b0c6d7e8f";
    info.created = "2026-11-27T03:00:12Z";
    info.expires = "2026-12-27T03:00:12Z";
    auto env = crypto::Envelope::seal(
      info, token, { { "deploy", deploy.public_key() }, { "deploy-next", next.public_key() } });
    REQUIRE(env.has_value());

    const auto key_text = [](const crypto::PrivateKey& k) {
      auto t = k.to_base64().value();
      return std::string(reinterpret_cast<const char*>(t.data()), t.size()) + "\n";
    };
    const auto script = dir.write("consumer.py", k_consumer, 0600);
    const auto env_path = dir.write("env.json", env->to_json(), 0600);
    const auto k1 = dir.write("deploy.key", key_text(deploy), 0600);
    const auto k2 = dir.write("next.key", key_text(next), 0600);

    const auto out = run(fmt::format("/usr/bin/python3 {} {} {} {}", script, env_path, k1, k2));
    const auto expected = hex(token.view());
    CHECK(out == fmt::format("deploy {}\ndeploy-next {}\n", expected, expected));
  }
}
