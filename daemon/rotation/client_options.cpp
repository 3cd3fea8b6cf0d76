#include "rotation/client_options.hpp"

#include <fmt/core.h>

namespace rotation {

util::Result<net::ClientOptions>
client_options(const config::Config& config, const config::Controller& controller)
{
  net::ClientOptions o;
  // auth: self reads no admin credential: every request carries its user's own token.
  if (controller.auth == config::Auth::admin) {
    auto token = net::read_token_file(controller.admin_token_file);
    if (!token) {
      return util::make_error(
        token.error().kind,
        fmt::format("{}: admin_token_file {}", controller.name, token.error().message));
    }
    o.admin_user = controller.admin_user;
    o.admin_token = std::move(*token);
  }
  o.name = controller.name;
  o.url = controller.url;
  o.ca_file = controller.ca_file;
  // config::load already refused http unless the host is loopback or insecure_http is set.
  o.allow_http = true;
  o.timeout = controller.timeout;
  o.max_concurrent = controller.max_concurrent;
  o.verify_concurrent = controller.verify_concurrent;
  o.retry.attempts = config.retry.attempts;
  o.retry.initial = config.retry.initial;
  o.retry.max = config.retry.max;
  return o;
}

} // namespace rotation
