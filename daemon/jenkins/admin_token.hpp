#pragma once

#include "crypto/secret_bytes.hpp"
#include "net/http_client.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>
#include <vector>

// What admin_token_rotation asks of Jenkins beyond mint, list and revoke
// (docs/admin-token-rotation.md): which token of a user a value is, proven by the hash Jenkins
// stores (the value itself never leaves our memory but as the Authorization header).
namespace jenkins {

struct TokenMatch
{
  std::string uuid;
  std::string name;
};

// The SHA-256 hex Jenkins stores for `token` (reference §3.4): of the 32 characters after
// "11" for a 34-character token, else of the whole (a legacy token); `legacy` says which.
struct TokenHash
{
  std::string hex;
  bool legacy = false;
};
TokenHash token_hash(const crypto::SecretBytes& token);

// Runs find_token.groovy: the tokens of `user` whose stored hash is `hash` (normally one,
// none when it expired or was revoked). Idempotent. Errors: net failures, script_error,
// bad_output, unknown_user (as a bad_output naming the user).
boost::asio::awaitable<net::Result<std::vector<TokenMatch>>> find_token(net::Client& client,
                                                                        std::string user,
                                                                        TokenHash hash);

} // namespace jenkins
