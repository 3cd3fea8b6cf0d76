#pragma once

#include "config/config.hpp"
#include "jenkins/api.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>

namespace rotation {

// Makes the jenkins::Api of each configured controller, once, when an Engine is built.
// In rotation/, not jenkins/: it reads the config (DESIGN §9).
class ApiFactory
{
public:
  virtual ~ApiFactory() = default;
  // Errors: the admin token file cannot be read (its kind, naming the controller), the
  // URL or CA file is bad (net kinds).
  virtual util::Result<std::unique_ptr<jenkins::Api>> make(
    boost::asio::any_io_executor executor, const config::Config& config,
    const config::Controller& controller) = 0;
};

// The real controllers over HTTPS: client_options(), then jenkins::make_http_api().
std::unique_ptr<ApiFactory> http_api_factory();

} // namespace rotation
