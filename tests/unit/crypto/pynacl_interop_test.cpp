#include "crypto/envelope.hpp"
#include "crypto/private_key.hpp"
#include "crypto/signing_key.hpp"
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

// PyNaCl's VerifyKey checks the signature of an envelope we signed, over the bytes
// docs/envelope.md defines (rebuilt here from the JSON, independently of our code), then
// changes one field at a time and expects each change to be refused. Prints "verified" and
// one "refused <field>" line per change.
constexpr const char* k_verifier = R"(
import base64, copy, json, struct, sys
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

def field(b):
    return struct.pack(">Q", len(b)) + b

def signed_bytes(env):
    m = b"jenkins-token-rotator/v1 signature\0"
    for k in ("format", "controller", "url", "user", "token_name", "token_uuid", "created", "expires"):
        m += field(env[k].encode())
    je = env["jenkins_expires"]
    m += b"\0" if je is None else b"\1" + field(je.encode())
    m += struct.pack(">Q", len(env["sealed"]))
    for e in env["sealed"]:
        m += field(e["recipient"].encode()) + field(e["key_id"].encode())
        m += field(e["alg"].encode()) + field(base64.b64decode(e["ciphertext"], validate=True))
    return m + field(b"ed25519") + field(env["signature"]["key_id"].encode())

env = json.load(open(sys.argv[1]))
assert list(env)[-1] == "signature" and list(env["signature"]) == ["alg", "key_id", "sig"]
assert env["signature"]["alg"] == "ed25519"
line = open(sys.argv[2]).read()
assert line.endswith("\n") and line.count("\n") == 1 and line.startswith("ed25519-verify:")
key = VerifyKey(base64.b64decode(line[len("ed25519-verify:"):-1], validate=True))
sig = base64.b64decode(env["signature"]["sig"], validate=True)
key.verify(signed_bytes(env), sig)
print("verified")

def flip_b64(s):
    raw = bytearray(base64.b64decode(s))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()

changes = {
    "format": lambda e: e.update(format="jenkins-token-rotator/v2"),
    "controller": lambda e: e.update(controller=e["controller"] + "x"),
    "url": lambda e: e.update(url="https://evil.example.com/"),
    "user": lambda e: e.update(user="svc-other"),
    "token_name": lambda e: e.update(token_name=e["token_name"][:-1] + "9"),
    "token_uuid": lambda e: e.update(token_uuid="1" + e["token_uuid"][1:]),
    "created": lambda e: e.update(created="2026-11-27T03:00:13Z"),
    "expires": lambda e: e.update(expires="2027-12-27T03:00:12Z"),
    "jenkins_expires": lambda e: e.update(jenkins_expires=None),
    "sealed.recipient": lambda e: e["sealed"][0].update(recipient="mallory"),
    "sealed.key_id": lambda e: e["sealed"][0].update(key_id="00000000"),
    "sealed.ciphertext": lambda e: e["sealed"][1].update(ciphertext=flip_b64(e["sealed"][1]["ciphertext"])),
    "sealed.order": lambda e: e["sealed"].reverse(),
    "sealed.dropped": lambda e: e["sealed"].pop(),
    "signature.key_id": lambda e: e["signature"].update(key_id="00000000"),
}
for name, change in changes.items():
    e = copy.deepcopy(env)
    change(e)
    try:
        key.verify(signed_bytes(e), sig)
        print("ACCEPTED", name)
    except BadSignatureError:
        print("refused", name)
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

  TEST_CASE("PyNaCl's VerifyKey verifies our signature and refuses each changed field")
  {
    test::TempDir dir;
    auto deploy = crypto::PrivateKey::generate().value();
    auto next = crypto::PrivateKey::generate().value();
    const auto signer = crypto::SigningKey::generate().value();
    const std::string plain = "11" + std::string(32, 'c');
    auto token = crypto::SecretBytes::copy_of(
                   { reinterpret_cast<const unsigned char*>(plain.data()), plain.size() })
                   .value();
    crypto::Envelope info;
    info.controller = "ci";
    info.url = "https://jenkins.example.com/";
    info.user = "svc-d\u00e9ploy \"quoted\"";
    info.token_name = "rotator-5f2a9c1e-000042";
    info.token_uuid = "0b1c8e6a-8f4e-4d55-9a51-2f5b0c6d7e8f";
    info.created = "2026-11-27T03:00:12Z";
    info.expires = "2026-12-27T03:00:12Z";
    info.jenkins_expires = "2026-12-28T00:00:00+09:00";
    auto env = crypto::Envelope::seal(
                 info, token, { { "deploy", deploy.public_key() }, { "next", next.public_key() } })
                 .value();
    env.sign(signer);

    const auto script = dir.write("verifier.py", k_verifier, 0600);
    const auto env_path = dir.write("env.json", env.to_json(), 0600);
    const auto pub = dir.write("signing.pub", signer.verify_key().to_text() + "\n", 0644);
    const auto out = run(fmt::format("/usr/bin/python3 {} {} {}", script, env_path, pub));
    CHECK(out == "verified\n"
                 "refused format\nrefused controller\nrefused url\nrefused user\n"
                 "refused token_name\nrefused token_uuid\nrefused created\nrefused expires\n"
                 "refused jenkins_expires\nrefused sealed.recipient\nrefused sealed.key_id\n"
                 "refused sealed.ciphertext\nrefused sealed.order\nrefused sealed.dropped\n"
                 "refused signature.key_id\n");
  }
}
