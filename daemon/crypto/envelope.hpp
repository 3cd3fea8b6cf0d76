#pragma once

#include "crypto/private_key.hpp"
#include "crypto/public_key.hpp"
#include "crypto/secret_bytes.hpp"
#include "crypto/signing_key.hpp"
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

// The daemon's signature over every other field of an envelope (alg is always ed25519).
struct EnvelopeSignature
{
  std::string key_id;             // the verify key's key_id
  std::vector<unsigned char> sig; // 64 bytes of crypto_sign_detached
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
  static constexpr std::string_view k_signature_alg = "ed25519";
  // The first bytes of what a signature covers (signed_bytes()).
  static constexpr std::string_view k_signature_domain = "jenkins-token-rotator/v1 signature";

  std::string controller;
  std::string url;
  std::string user;
  std::string token_name;
  std::string token_uuid;
  std::string created;
  std::string expires;
  std::optional<std::string> jenkins_expires; // null where Jenkins has no expiry
  std::vector<SealedEntry> sealed;
  std::optional<EnvelopeSignature> signature; // absent: unsigned (no signing_key configured)

  // Seals `token` once for every recipient, in order, into a copy of `info` (its `sealed`
  // is replaced, and any signature dropped). Errors: no recipients, an empty or non-UTF-8 field, a
  // timestamp that is not RFC 3339, a key libsodium refuses.
  static util::Result<Envelope> seal(const Envelope& info, const SecretBytes& token,
                                     const std::vector<Recipient>& recipients);

  // Strict parser. Errors start with `where` and have distinct kinds: "json" (malformed),
  // "format" (not jenkins-token-rotator/v1), "alg" (not crypto_box_seal), "envelope"
  // (missing, mistyped, unknown or empty fields, bad base64, bad timestamps).
  static util::Result<Envelope> parse(std::string_view json, std::string_view where);

  // One line of JSON, fields in the order of DESIGN §6, no trailing newline.
  [[nodiscard]] std::string to_json() const;

  // Signs every other field with `key` (issue 19 #3): sets `signature`, replacing any.
  void sign(const SigningKey& key);

  // Checks `signature` against `key`. Errors (starting with `where`): "unsigned" (no
  // signature), "signature" (signed by another key_id, or the signature does not verify:
  // a field was changed or another key signed it).
  [[nodiscard]] util::Result<void> verify(const VerifyKey& key, std::string_view where) const;

  // What the signature covers, with no canonicalisation ambiguity (no JSON is signed):
  //   the ASCII bytes of k_signature_domain, one 0x00 byte, then each of these as a field
  //   (an 8-byte big-endian length, then its bytes: the UTF-8 of a text as it reads after
  //   JSON unescaping, the raw bytes of a ciphertext after base64 decoding):
  //   format, controller, url, user, token_name, token_uuid, created, expires;
  //   jenkins_expires as one byte 0x00 when null, else 0x01 and the field;
  //   the number of sealed entries as 8 bytes big-endian, then for each entry in order
  //   recipient, key_id, alg, ciphertext;
  //   then the signature's alg ("ed25519") and key_id.
  // Requires `signature` to be set (its key_id is covered); docs/envelope.md says the same.
  [[nodiscard]] std::vector<unsigned char> signed_bytes() const;

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
