#pragma once

#include "crypto/secret_bytes.hpp"
#include "net/http_client.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>

// Jenkins' REST token endpoints (reference/jenkins-api.md §4), for `auth: self`: every
// call authenticates as the user with one of its own tokens (Basic user:token, so no
// crumb), never as an admin, and runs no script. The endpoints are
// /user/<id>/descriptorByName/jenkins.security.ApiTokenProperty/<method>, all POST.

namespace jenkins {

// What GET /whoAmI/api/json as the user tells: the version from `X-Jenkins`.
struct RestProbe
{
  std::string version;
  bool helpers = false;  // 2.260+: addFixedToken, revokeAllExcept
  bool expiring = false; // 2.548+: tokenExpiration on the mint
};

// Parses "2.548" or "2.555.1" (other text: nullopt) into major * 1000 + minor (2548).
std::optional<int> version_number(const std::string& version);

// /whoAmI as `user` with `token`: the token works and names the user, and the controller's
// version. Errors: as verify(); bad_output when Jenkins sends no X-Jenkins header.
boost::asio::awaitable<net::Result<RestProbe>> rest_probe(net::Client& client,
                                                          const std::string& user,
                                                          const crypto::SecretBytes& token);

// addFixedToken as `user` (authenticated with `as`): stores `value` ("11" + 32 lowercase
// hex, made and persisted by the caller before this call) under `name`; `expiration_day`
// (yyyy-MM-dd, 2.548+ only) makes Jenkins expire it after that day. Returns the uuid.
// Not idempotent: a lost answer is outcome_unknown (the caller then asks /whoAmI with
// `value`). Errors: forbidden (403: not the user), http_status (500: a refused value),
// bad_output (an answer that is not {"status":"ok","data":{"tokenUuid":…}}).
boost::asio::awaitable<net::Result<std::string>> add_fixed_token(
  net::Client& client, const std::string& user, const crypto::SecretBytes& as,
  const std::string& name, const crypto::SecretBytes& value,
  const std::optional<std::string>& expiration_day);

// revoke (tokenUuid) as `user`: idempotent, an unknown uuid is not an error in Jenkins.
boost::asio::awaitable<net::Result<void>> rest_revoke(net::Client& client, const std::string& user,
                                                      const crypto::SecretBytes& as,
                                                      const std::string& uuid);

// revokeAllExcept (2.260+) as `user`: every token of the user but `keep_uuid` is gone.
// Idempotent.
boost::asio::awaitable<net::Result<void>> rest_revoke_all_except(net::Client& client,
                                                                 const std::string& user,
                                                                 const crypto::SecretBytes& as,
                                                                 const std::string& keep_uuid);

// "Basic base64(user:token)" in wiped memory. Errors: libsodium unusable.
util::Result<net::WipedString> basic_authorization(const std::string& user,
                                                   const crypto::SecretBytes& token);

} // namespace jenkins
