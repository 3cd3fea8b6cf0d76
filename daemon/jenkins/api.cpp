#include "jenkins/api.hpp"

#include "net/http_client.hpp"

namespace jenkins {

namespace {

net::Failure
no_rest()
{
  return net::Failure{ net::FailureKind::bad_output, 0, "this Jenkins API has no REST token path" };
}

} // namespace

boost::asio::awaitable<net::Result<RestProbe>>
Api::rest_probe(std::string, const crypto::SecretBytes&)
{
  co_return no_rest();
}

boost::asio::awaitable<net::Result<std::string>>
Api::add_fixed_token(std::string, const crypto::SecretBytes&, std::string,
                     const crypto::SecretBytes&, std::optional<std::string>)
{
  co_return no_rest();
}

boost::asio::awaitable<net::Result<void>>
Api::rest_revoke(std::string, const crypto::SecretBytes&, std::string)
{
  co_return no_rest();
}

boost::asio::awaitable<net::Result<void>>
Api::rest_revoke_all_except(std::string, const crypto::SecretBytes&, std::string)
{
  co_return no_rest();
}

boost::asio::awaitable<net::Result<ProbeResult>>
Api::probe_as(std::string, const crypto::SecretBytes&)
{
  co_return no_rest();
}

boost::asio::awaitable<net::Result<std::vector<TokenMatch>>>
Api::find_token(std::string, TokenHash)
{
  co_return no_rest();
}

util::Result<void>
Api::set_admin_token(const crypto::SecretBytes&)
{
  return util::make_error("auth", "this Jenkins API cannot switch its admin token");
}

namespace {

class HttpApi : public Api
{
public:
  explicit HttpApi(std::unique_ptr<net::Client> client)
    : m_client(std::move(client))
  {
  }

  boost::asio::awaitable<net::Result<ProbeResult>> probe() override
  {
    co_return co_await jenkins::probe(*m_client);
  }

  boost::asio::awaitable<net::Result<ListAnswer>> list(std::vector<std::string> users) override
  {
    co_return co_await jenkins::list(*m_client, users);
  }

  boost::asio::awaitable<net::Result<MintAnswer>> mint(Variant variant,
                                                       std::vector<MintItem> items) override
  {
    co_return co_await jenkins::mint(*m_client, variant, items);
  }

  boost::asio::awaitable<net::Result<RevokeAnswer>> revoke(Variant variant,
                                                           std::vector<RevokeItem> items) override
  {
    co_return co_await jenkins::revoke(*m_client, variant, items);
  }

  boost::asio::awaitable<net::Result<void>> verify(std::string user,
                                                   const crypto::SecretBytes& token) override
  {
    co_return co_await jenkins::verify(*m_client, user, token);
  }

  boost::asio::awaitable<net::Result<RestProbe>> rest_probe(std::string user,
                                                            const crypto::SecretBytes& as) override
  {
    co_return co_await jenkins::rest_probe(*m_client, user, as);
  }

  boost::asio::awaitable<net::Result<std::string>> add_fixed_token(
    std::string user, const crypto::SecretBytes& as, std::string name,
    const crypto::SecretBytes& value, std::optional<std::string> expiration_day) override
  {
    co_return co_await jenkins::add_fixed_token(*m_client, user, as, name, value, expiration_day);
  }

  boost::asio::awaitable<net::Result<void>> rest_revoke(std::string user,
                                                        const crypto::SecretBytes& as,
                                                        std::string uuid) override
  {
    co_return co_await jenkins::rest_revoke(*m_client, user, as, uuid);
  }

  boost::asio::awaitable<net::Result<void>> rest_revoke_all_except(std::string user,
                                                                   const crypto::SecretBytes& as,
                                                                   std::string keep_uuid) override
  {
    co_return co_await jenkins::rest_revoke_all_except(*m_client, user, as, keep_uuid);
  }

  boost::asio::awaitable<net::Result<ProbeResult>> probe_as(
    std::string admin_user, const crypto::SecretBytes& token) override
  {
    auto header = net::basic_authorization(admin_user, token);
    if (!header) {
      co_return net::Failure{ net::FailureKind::bad_output, 0, header.error().message };
    }
    co_return co_await jenkins::probe(*m_client, std::move(*header));
  }

  boost::asio::awaitable<net::Result<std::vector<TokenMatch>>> find_token(std::string user,
                                                                          TokenHash hash) override
  {
    co_return co_await jenkins::find_token(*m_client, std::move(user), std::move(hash));
  }

  util::Result<void> set_admin_token(const crypto::SecretBytes& token) override
  {
    return m_client->set_admin_token(token);
  }

private:
  std::unique_ptr<net::Client> m_client;
};

} // namespace

util::Result<std::unique_ptr<Api>>
make_http_api(boost::asio::any_io_executor executor, net::ClientOptions options)
{
  auto client = net::Client::create(std::move(executor), std::move(options));
  if (!client) {
    return client.error().to_error();
  }
  return std::unique_ptr<Api>(std::make_unique<HttpApi>(std::move(*client)));
}

} // namespace jenkins
