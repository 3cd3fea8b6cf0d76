// The `decrypt` path on an arbitrary envelope: crypto::Envelope::parse, verify() with a
// fixed verify key, then open() with a fixed private key (the committed seeds are sealed to
// it, some signed with it: make-envelope-seeds), and the state store's check_envelope.
// Oracles: no crash or exception; an envelope that parses serialises to JSON that parses
// back to the same envelope; an error always has one of the documented kinds; an unsigned
// envelope never verifies; check_envelope accepts nothing that parse refuses.
#include "crypto/envelope.hpp"
#include "crypto/private_key.hpp"
#include "crypto/secret_bytes.hpp"
#include "crypto/signing_key.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

// The fixed key of the seeds: bytes 1..32 (corpus/envelope/README says how they were made).
const crypto::PrivateKey&
fixed_key()
{
  static const crypto::PrivateKey key = [] {
    std::array<unsigned char, 32> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = static_cast<unsigned char>(i + 1);
    }
    auto secret = crypto::SecretBytes::copy_of(bytes);
    if (!secret) {
      std::abort();
    }
    auto k = crypto::PrivateKey::from_bytes(std::move(*secret));
    if (!k) {
      std::abort();
    }
    return std::move(*k);
  }();
  return key;
}

// The verify key of the seeds' signatures: the Ed25519 key of seed bytes 65..96.
const crypto::VerifyKey&
verify_key()
{
  static const crypto::VerifyKey key = [] {
    // ed25519-sign: and base64 of the seed bytes 65..96.
    const std::string text = "ed25519-sign:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A=";
    auto k = crypto::SigningKey::from_text(
      { reinterpret_cast<const unsigned char*>(text.data()), text.size() }, "fuzz");
    if (!k) {
      std::abort();
    }
    return k->verify_key();
  }();
  return key;
}

bool
one_of(const std::string& kind, std::initializer_list<std::string_view> kinds)
{
  for (const auto k : kinds) {
    if (kind == k) {
      return true;
    }
  }
  return false;
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto& key = fixed_key();
  const auto envelope = crypto::Envelope::parse(text, "fuzz.json");
  const auto checked =
    crypto::check_envelope(text, "0b1c8e6a-8f4e-4d55-9a51-2f5b0c6d7e8f", "rotator-5f2a9c1e-000042");
  if (checked && !envelope) {
    std::abort();
  }
  if (!envelope) {
    if (!one_of(envelope.error().kind, { "json", "format", "alg", "envelope" }) ||
        !envelope.error().message.starts_with("fuzz.json")) {
      std::abort();
    }
    return 0;
  }
  const auto json = envelope->to_json();
  const auto again = crypto::Envelope::parse(json, "again");
  if (!again || again->to_json() != json) {
    std::abort();
  }
  const auto verified = envelope->verify(verify_key(), "fuzz.json");
  if (!verified &&
      !one_of(verified.error().kind, envelope->signature
                                       ? std::initializer_list<std::string_view>{ "signature" }
                                       : std::initializer_list<std::string_view>{ "unsigned" })) {
    std::abort();
  }
  const auto token = envelope->open(key, "fuzz.json");
  if (std::getenv("JTR_FUZZ_TRACE") != nullptr) {
    std::fprintf(stderr, "parsed; verify: %s; open: %s\n",
                 verified ? "ok" : verified.error().kind.c_str(),
                 token ? "ok" : token.error().kind.c_str());
  }
  if (!token && !one_of(token.error().kind, { "no_key", "open" })) {
    std::abort();
  }
  return 0;
}
