#pragma once

#include "state/records.hpp"
#include "util/error.hpp"

#include <optional>
#include <string>
#include <string_view>

// Our token names (DESIGN §2.1): `{prefix}{instance}-{seq:06}-{mac}`, e.g.
// `rotator-5f2a9c1e-000042-9b1f03c2a7d4e8f1`. The MAC (crypto::name_mac: 16 hex over
// instance, controller, folded user and seq under the state's name key) is what makes a
// name ours: anyone may name a token `rotator-<our instance>-999999`, nobody without the
// key can add the MAC. Names minted before the MAC existed (`{prefix}{instance}-{seq:06}`,
// "legacy") still parse, but prove nothing: they count as ours only through the state
// (their uuid, or the exact name of one of our attempts).
namespace rotation {

struct TokenName
{
  std::string instance;           // 8 lowercase hex
  state::Seq seq = 0;             // 6 to 18 digits
  std::optional<std::string> mac; // 16 lowercase hex; nullopt: a legacy name
};

// Parses a name minted with `prefix`; nullopt when it is not shaped like ours.
std::optional<TokenName> parse_token_name(std::string_view name, std::string_view prefix);

// The name of seq `seq` of the slot (controller, user_key), MAC under `key_hex`.
// Errors: a key that is not 64 hex (a corrupt state; Store::open refuses that).
util::Result<std::string> make_token_name(std::string_view prefix, std::string_view instance,
                                          std::string_view key_hex, std::string_view controller,
                                          std::string_view user_key, state::Seq seq);

// Whether a parsed name's MAC is the one our key gives (controller, user_key, its seq).
// A legacy name (no MAC) is never genuine.
bool genuine_token_name(const TokenName& name, std::string_view key_hex,
                        std::string_view controller, std::string_view user_key);

} // namespace rotation
