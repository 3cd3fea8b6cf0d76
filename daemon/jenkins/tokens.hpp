#pragma once

#include "crypto/secret_bytes.hpp"
#include "net/failure.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// Batched token operations through the script console (DESIGN §2, §2.3): mint, list and
// revoke carry many users of one controller per script call, and each item answers on
// its own. The scripts are constant text (scripts/mint.groovy, list.groovy,
// revoke.groovy); their one input is a base64 JSON literal.
namespace net {
class Client;
struct Response;
} // namespace net

namespace jenkins {

// A Jenkins API token made since 2.129: "11" and 32 lowercase hex (reference §3.4).
constexpr std::size_t k_token_length = 34;

struct ProbeResult;

using SysSeconds = std::chrono::sys_seconds;

// Which token API a controller has, chosen from its probe (DESIGN §2.3).
enum class Variant
{
  expiring, // 2.548+: generateNewToken(String, LocalDate)
  helpers,  // 2.260+: ApiTokenProperty.generateNewToken(String) / revokeToken
  store     // older: tokenStore.* plus user.save()
};

Variant variant_of(const ProbeResult& probe);
const char* to_string(Variant variant);

// Jenkins' view of time in one answer: comparisons against its timestamps use its
// own `now`, so clock skew between hosts does not matter.
struct Clock
{
  std::string version;
  std::int64_t now_ms = 0;
  std::string zone;
};

// One item's failure: "unknown_user", "no_token_property", "exception", "missing".
struct ItemError
{
  std::string kind;
  std::string message;
};

struct MintItem
{
  std::string user;
  std::string name;
  // How long the token must live. With expiring tokens the script adds it to Jenkins' own
  // now (issue 19 #11): a controller whose clock is off still gets a token that lives
  // `lifetime` from the mint, never one born expired.
  std::chrono::seconds lifetime{ 0 };
};

struct Minted
{
  std::string uuid;
  crypto::SecretBytes token; // read straight from the wiped body, never a std::string
  std::optional<std::int64_t> jenkins_expires_ms;
  std::string jenkins_expires; // RFC 3339 with the controller's offset, or empty (never expires)
};

struct MintResult
{
  std::optional<Minted> minted;
  std::optional<ItemError> error;
};

struct MintAnswer
{
  Clock clock;
  std::vector<MintResult> items; // same order as the request
};

struct TokenInfo
{
  std::string uuid;
  std::string name;
  std::optional<std::int64_t> created_ms;
  std::optional<std::string> expiration; // yyyy-MM-dd, a local day in Jenkins' zone
  bool expired = false;
  int use_counter = 0;
  std::optional<std::int64_t> last_use_ms;
  bool legacy = false;
};

struct UserTokens
{
  std::string user;
  std::vector<TokenInfo> tokens;
  std::optional<ItemError> error;
};

struct ListAnswer
{
  Clock clock;
  std::optional<bool> usage_statistics; // nullopt: Jenkins does not say
  std::vector<UserTokens> users;        // same order as the request
};

struct RevokeItem
{
  std::string user;
  std::string uuid;
};

enum class RevokeOutcome
{
  revoked,
  not_found,
  failed
};

struct RevokeResult
{
  RevokeOutcome outcome = RevokeOutcome::failed;
  std::optional<ItemError> error;
};

struct RevokeAnswer
{
  Clock clock;
  std::vector<RevokeResult> items;
};

// Mints one token per item in one script call. A mint is not idempotent: a lost
// answer is outcome_unknown (the engine then lists by name). Errors: net failures,
// script_error, bad_output (a token line that is not "11" + 32 hex, or an item whose
// uuid, error and token line disagree: some token may be unaccounted for).
boost::asio::awaitable<net::Result<MintAnswer>> mint(net::Client& client, Variant variant,
                                                     std::span<const MintItem> items);

// Lists the tokens of each user in one script call (idempotent).
boost::asio::awaitable<net::Result<ListAnswer>> list(net::Client& client,
                                                     std::span<const std::string> users);

// Revokes tokens by uuid in one script call (idempotent: an unknown uuid is not_found).
boost::asio::awaitable<net::Result<RevokeAnswer>> revoke(net::Client& client, Variant variant,
                                                         std::span<const RevokeItem> items);

// Decodes a mint script's answer for `count` items: the tokens go straight from the
// body into SecretBytes. Errors as for mint(); `controller` names the place.
net::Result<MintAnswer> read_mint_answer(const net::Response& answer, std::size_t count,
                                         const std::string& controller);

// Decodes a list script's answer for `users`. Errors: script_error, bad_output.
net::Result<ListAnswer> read_list_answer(std::string_view output,
                                         std::span<const std::string> users,
                                         const std::string& controller);

// Decodes a revoke script's answer for `count` items. Errors: script_error, bad_output.
net::Result<RevokeAnswer> read_revoke_answer(std::string_view output, std::size_t count,
                                             const std::string& controller);

// GET /whoAmI/api/json as user:token: ok only for 200 with `name` equal to the user
// (whoAmI also answers anonymous requests). Errors: auth (refused), http_status 500
// (the user is not in the security realm), bad_output (another name), net failures.
boost::asio::awaitable<net::Result<void>> verify(net::Client& client, const std::string& user,
                                                 const crypto::SecretBytes& token);

} // namespace jenkins
