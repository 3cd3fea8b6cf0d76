#include "rotation/api_factory.hpp"

#include "rotation/client_options.hpp"

namespace rotation {

namespace {

class HttpApiFactory : public ApiFactory
{
public:
  util::Result<std::unique_ptr<jenkins::Api>> make(boost::asio::any_io_executor executor,
                                                   const config::Config& config,
                                                   const config::Controller& controller) override
  {
    auto options = client_options(config, controller);
    if (!options) {
      return options.error();
    }
    return jenkins::make_http_api(std::move(executor), std::move(*options));
  }
};

} // namespace

std::unique_ptr<ApiFactory>
http_api_factory()
{
  return std::make_unique<HttpApiFactory>();
}

} // namespace rotation
