#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/harden_first.hpp"
#include "config/loader.hpp"
#include "net/http_client.hpp"
#include "rotation/api_factory.hpp"
#include "util/error.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>

namespace app {

namespace {

const char*
yes_no(bool v)
{
  return v ? "yes" : "no";
}

std::string
describe(const config::Controller& c, const jenkins::ProbeResult& p)
{
  // Jenkins read its clock somewhere inside the exchange and we compare with its middle,
  // so the skew is known to within half the latency.
  const double skew = static_cast<double>(p.now_millis - p.local_millis) / 1000.0;
  return fmt::format(
    "{}: OK: Jenkins {} at {}, zone {}; expiring tokens: {}, 2.260 helpers: {}, usage "
    "statistics: {}; latency {} ms; clock skew {:+.1f} s ±{:.1f} s (Jenkins minus local)",
    c.name, p.version, c.url, p.zone, yes_no(p.expiring_tokens), yes_no(p.helpers),
    p.usage_statistics ? (*p.usage_statistics ? "on" : "off") : "unknown", p.latency.count(), skew,
    static_cast<double>(p.latency.count()) / 2000.0);
}

std::string
describe(const config::Controller& c, const util::Error& e)
{
  std::string message = e.message;
  if (message.starts_with(c.name + ": ")) {
    message.erase(0, c.name.size() + 2);
  }
  return fmt::format("{}: FAILED: {}: {}", c.name, e.kind, message);
}

// auth: self has no admin to probe with: each user with a bootstrap_token_file logs in
// with it (REST /whoAmI, no script) and the version must be 2.260+ (addFixedToken,
// revokeAllExcept). Users without one are probed by the daemon with its kept tokens.
boost::asio::awaitable<std::pair<bool, std::string>>
probe_self(const config::Config& config, const config::Controller& c, jenkins::Api& api)
{
  std::vector<std::string> said;
  bool all = true;
  int probed = 0;
  for (const auto& u : config.users) {
    if (u.controller != c.name || u.bootstrap_token_file.empty()) {
      continue;
    }
    auto token = net::read_token_file(u.bootstrap_token_file);
    if (!token) {
      all = false;
      said.push_back(fmt::format("{}: bootstrap_token_file {}", u.user, token.error().message));
      continue;
    }
    ++probed;
    std::string user = u.user;
    auto p = co_await api.rest_probe(std::move(user), *token);
    if (!p) {
      all = false;
      said.push_back(fmt::format("{}: {}", u.user, p.error().message));
    } else if (!p->helpers) {
      all = false;
      said.push_back(fmt::format("auth: self needs Jenkins 2.260 or later (addFixedToken and "
                                 "revokeAllExcept); it runs {} (probed as {})",
                                 p->version, u.user));
    } else {
      said.push_back(fmt::format("Jenkins {}, auth: self as {} (REST, no admin; expiring "
                                 "tokens: {})",
                                 p->version, u.user, yes_no(p->expiring)));
    }
  }
  if (probed == 0 && all) {
    co_return std::pair(true, fmt::format("{}: OK: auth: self (no admin credential); no "
                                          "bootstrap token to probe with, the daemon probes "
                                          "with the tokens it keeps",
                                          c.name));
  }
  std::string text;
  for (const auto& s : said) {
    text += (text.empty() ? "" : "; ") + s;
  }
  co_return std::pair(all, fmt::format("{}: {}: {}", c.name, all ? "OK" : "FAILED", text));
}

// Probes every controller at once on one io_context; one line per controller, in config
// order. Returns whether all succeeded.
bool
connect_all(const config::Config& config)
{
  boost::asio::io_context ioc;
  std::vector<std::string> lines(config.controllers.size());
  std::vector<bool> ok(config.controllers.size(), false);
  // The engine's seam to Jenkins (jenkins::Api), as `once` builds it.
  const auto factory = rotation::http_api_factory();
  std::vector<std::unique_ptr<jenkins::Api>> apis;
  for (std::size_t i = 0; i < config.controllers.size(); ++i) {
    const auto& c = config.controllers[i];
    auto api = factory->make(ioc.get_executor(), config, c);
    if (!api) {
      lines[i] = describe(c, api.error());
      continue;
    }
    apis.push_back(std::move(*api));
    auto& jenkins_api = *apis.back();
    if (c.auth == config::Auth::self) {
      boost::asio::co_spawn(
        ioc,
        [&, i]() -> boost::asio::awaitable<void> {
          auto r = co_await probe_self(config, config.controllers[i], jenkins_api);
          ok[i] = r.first;
          lines[i] = std::move(r.second);
        },
        [&, i](std::exception_ptr e) {
          if (e) {
            lines[i] = fmt::format("{}: FAILED: internal error", config.controllers[i].name);
          }
        });
      continue;
    }
    boost::asio::co_spawn(
      ioc,
      [&, i]() -> boost::asio::awaitable<void> {
        auto r = co_await jenkins_api.probe();
        ok[i] = r.has_value();
        lines[i] = r ? describe(config.controllers[i], *r)
                     : describe(config.controllers[i], r.error().to_error());
        if (r && !r->helpers) {
          // Users saying auth: self on this admin controller mint over REST.
          const auto& name = config.controllers[i].name;
          const auto self = std::find_if(config.users.begin(), config.users.end(), [&](auto& u) {
            return u.controller == name && u.auth == config::Auth::self;
          });
          if (self != config.users.end()) {
            ok[i] = false;
            lines[i] = fmt::format("{}: FAILED: auth: self (user {}) needs Jenkins 2.260 or "
                                   "later (addFixedToken and revokeAllExcept); it runs {}",
                                   name, self->user, r->version);
          }
        }
      },
      [&, i](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            lines[i] =
              fmt::format("{}: FAILED: internal: {}", config.controllers[i].name, x.what());
          }
        }
      });
  }
  ioc.run();
  bool all = true;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::fputs((lines[i] + "\n").c_str(), stdout);
    all = all && ok[i];
  }
  std::fflush(stdout);
  return all;
}

} // namespace

int
cmd_check_config(const std::vector<std::string>& args)
{
  const Args a("check-config", args, { "connect" }, { "config" });
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("check-config: unexpected argument \"{}\"", a.positional()[0]));
  }
  const auto path = a.config_path();
  if (a.flag("connect")) {
    harden_first("check-config"); // --connect reads the admin tokens
  }
  auto config = config::load(path);
  if (!config) {
    std::fputs((config.error().message + "\n").c_str(), stderr);
    return util::exit_code::k_config;
  }
  std::size_t sinks = 0;
  for (const auto& u : config->users) {
    sinks += u.sinks.size();
  }
  std::fputs(fmt::format("{}: OK: {} controller{}, {} recipient{}, {} user{}, {} sink{}\n", path,
                         config->controllers.size(), config->controllers.size() == 1 ? "" : "s",
                         config->recipients.size(), config->recipients.size() == 1 ? "" : "s",
                         config->users.size(), config->users.size() == 1 ? "" : "s", sinks,
                         sinks == 1 ? "" : "s")
               .c_str(),
             stdout);
  if (a.flag("connect")) {
    std::fflush(stdout);
    return connect_all(*config) ? util::exit_code::k_ok : util::exit_code::k_failure;
  }
  return util::exit_code::k_ok;
}

} // namespace app
