#pragma once

#include "crypto/secret_bytes.hpp"
#include "jenkins/admin_token.hpp"
#include "jenkins/probe.hpp"
#include "jenkins/rest.hpp"
#include "jenkins/tokens.hpp"
#include "net/http_client.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

// What the rotation engine asks of one controller (DESIGN §2.3), as an interface: the
// real one (make_http_api) sends the scripts through a net::Client; the engine's unit
// tests answer in-process. Every call behaves as the free functions of probe.hpp and
// tokens.hpp describe; arguments are taken by value, so a caller's buffers may go.
namespace jenkins {

class Api
{
public:
  virtual ~Api() = default;
  virtual boost::asio::awaitable<net::Result<ProbeResult>> probe() = 0;
  virtual boost::asio::awaitable<net::Result<ListAnswer>> list(std::vector<std::string> users) = 0;
  virtual boost::asio::awaitable<net::Result<MintAnswer>> mint(Variant variant,
                                                               std::vector<MintItem> items) = 0;
  virtual boost::asio::awaitable<net::Result<RevokeAnswer>> revoke(
    Variant variant, std::vector<RevokeItem> items) = 0;
  virtual boost::asio::awaitable<net::Result<void>> verify(std::string user,
                                                           const crypto::SecretBytes& token) = 0;

  // The REST path of `auth: self` (rest.hpp): each call authenticates as `user` with `as`,
  // one of its own tokens, which the caller keeps alive until the call returns. No admin,
  // no script. The defaults refuse (bad_output): an Api without a REST path.
  virtual boost::asio::awaitable<net::Result<RestProbe>> rest_probe(std::string user,
                                                                    const crypto::SecretBytes& as);
  virtual boost::asio::awaitable<net::Result<std::string>> add_fixed_token(
    std::string user, const crypto::SecretBytes& as, std::string name,
    const crypto::SecretBytes& value, std::optional<std::string> expiration_day);
  virtual boost::asio::awaitable<net::Result<void>> rest_revoke(std::string user,
                                                                const crypto::SecretBytes& as,
                                                                std::string uuid);
  virtual boost::asio::awaitable<net::Result<void>> rest_revoke_all_except(
    std::string user, const crypto::SecretBytes& as, std::string keep_uuid);

  // admin_token_rotation (docs/admin-token-rotation.md). The defaults refuse (bad_output).
  // The probe script as admin_user with `token` instead of the current admin token: proves
  // the new token holds Administer before the daemon switches to it.
  virtual boost::asio::awaitable<net::Result<ProbeResult>> probe_as(
    std::string admin_user, const crypto::SecretBytes& token);
  // Which tokens of `user` have the stored hash `hash` (find_token.groovy, as admin).
  virtual boost::asio::awaitable<net::Result<std::vector<TokenMatch>>> find_token(std::string user,
                                                                                  TokenHash hash);
  // Every later request authenticates as admin_user with `token`.
  virtual util::Result<void> set_admin_token(const crypto::SecretBytes& token);
};

// The real controller behind `options`: one net::Client (errors: a bad URL, a CA file that
// does not load).
util::Result<std::unique_ptr<Api>> make_http_api(boost::asio::any_io_executor executor,
                                                 net::ClientOptions options);

} // namespace jenkins
