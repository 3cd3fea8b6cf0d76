// The `decrypt` path on an arbitrary envelope: crypto::Envelope::parse, then open() with a
// fixed private key (the committed seeds are sealed to it, so the fuzzer starts past the
// parser). Oracles: no crash or exception; an envelope that parses serialises to JSON that
// parses back to the same envelope; an error always has one of the documented kinds.
#include "crypto/envelope.hpp"
#include "crypto/private_key.hpp"
#include "crypto/secret_bytes.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
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
  const auto token = envelope->open(key, "fuzz.json");
  if (!token && !one_of(token.error().kind, { "no_key", "open" })) {
    std::abort();
  }
  return 0;
}
