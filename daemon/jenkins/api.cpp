#include "jenkins/api.hpp"

#include "net/http_client.hpp"

namespace jenkins {

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
