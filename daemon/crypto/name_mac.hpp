#pragma once

#include "util/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

// The MAC that makes our token names unforgeable (DESIGN §2.1, issue 19 #2): a service user
// can name a token of its own anything, so a name counts as ours only when it carries
// this MAC, which nobody without the state database's key can compute.
namespace crypto {

// What a name's MAC covers: the database's instance id, the controller (its config name),
// the user id folded as Jenkins compares ids, and the seq.
struct NameFields
{
  std::string_view instance;
  std::string_view controller;
  std::string_view user_key;
  std::int64_t seq = 0;
};

constexpr std::size_t k_name_mac_chars = 16; // 64 bits, lowercase hex

// Keyed BLAKE2b (crypto_generichash) under `key_hex` (64 lowercase hex: state::Store's
// name_key) over the fields, each length-prefixed so no two field lists share an input,
// truncated to 8 bytes as 16 lowercase hex. Errors: a key that is not 64 hex.
util::Result<std::string> name_mac(std::string_view key_hex, const NameFields& fields);

// Whether `mac` is the MAC of `fields` under `key_hex` (compared in constant time).
bool name_mac_ok(std::string_view key_hex, const NameFields& fields, std::string_view mac);

} // namespace crypto
