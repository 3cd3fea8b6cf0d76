#pragma once

#include "crypto/private_key.hpp"
#include "crypto/public_key.hpp"
#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crypto {

// One recipient of a sealed token: its name in the config and its public key.
struct Recipient
{
  std::string name;
  PublicKey key;
};

// One entry of `sealed`: the token sealed for one recipient (alg is always crypto_box_seal).
struct SealedEntry
{
  std::string recipient;
  std::string key_id;
  std::vector<unsigned char> ciphertext;
};

// What a sink receives (DESIGN §6): the token's metadata in clear and the token sealed for
// each recipient. Timestamps are RFC 3339 strings, already formatted by the caller
// (`2026-11-27T03:00:12Z`, `2026-12-28T00:00:00+09:00`): jenkins_expires carries the
// controller's offset, which a sys_seconds could not keep. The parser accepts exactly
// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with upper-case T and Z.
struct Envelope
{
  static constexpr std::string_view k_format = "jenkins-token-rotator/v1";
  static constexpr std::string_view k_alg = "crypto_box_seal";

  std::string controller;
  std::string url;
  std::string user;
  std::string token_name;
  std::string token_uuid;
  std::string created;
  std::string expires;
  std::optional<std::string> jenkins_expires; // null where Jenkins has no expiry
  std::vector<SealedEntry> sealed;

  // Seals `token` once for every recipient, in order, into a copy of `info` (its `sealed`
  // is replaced). Errors: no recipients, an empty or non-UTF-8 field, a timestamp that is
  // not RFC 3339, a key libsodium refuses.
  static util::Result<Envelope> seal(const Envelope& info, const SecretBytes& token,
                                     const std::vector<Recipient>& recipients);

  // Strict parser. Errors start with `where` and have distinct kinds: "json" (malformed),
  // "format" (not jenkins-token-rotator/v1), "alg" (not crypto_box_seal), "envelope"
  // (missing, mistyped, unknown or empty fields, bad base64, bad timestamps).
  static util::Result<Envelope> parse(std::string_view json, std::string_view where);

  // One line of JSON, fields in the order of DESIGN §6, no trailing newline.
  [[nodiscard]] std::string to_json() const;

  // Opens the entry whose key_id is `key`'s. Errors: "no_key" (no entry for this key; the
  // message lists the recipients), "open" (the entry does not open: altered ciphertext).
  [[nodiscard]] util::Result<SecretBytes> open(const PrivateKey& key, std::string_view where) const;
};

// The one envelope validator (DESIGN §6): `json` parses as an envelope (Envelope::parse's
// rules: only the fields of §6, at least one sealed entry, strict base64 and timestamps)
// of the token `token_uuid` named `token_name`. Errors have kind "envelope" and never show
// a value of the envelope, so whatever it holds stays out of logs. The state store runs it
// on every envelope it is given (state::Store::open's EnvelopeCheck: state may not use
// crypto, DESIGN §9, so the check is handed in by whoever opens the store).
util::Result<void> check_envelope(std::string_view json, std::string_view token_uuid,
                                  std::string_view token_name);

} // namespace crypto
