#pragma once

#include "config/config.hpp"
#include "net/http_client.hpp"

namespace rotation {

// The net::Client settings of one configured controller. Reads the admin token from
// admin_token_file; errors name the controller and the file, never the token.
util::Result<net::ClientOptions> client_options(const config::Config& config,
                                                const config::Controller& controller);

} // namespace rotation
