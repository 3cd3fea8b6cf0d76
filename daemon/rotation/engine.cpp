#include "rotation/engine.hpp"

#include "crypto/public_key.hpp"
#include "rotation/admin_token.hpp"
#include "rotation/api_factory.hpp"
#include "rotation/core.hpp"
#include "rotation/pass_impl.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace rotation {

namespace asio = boost::asio;

util::Result<std::unique_ptr<Engine>>
Engine::create(asio::any_io_executor executor, std::shared_ptr<const config::Config> config,
               state::Store& store, std::unique_ptr<rotation::ApiFactory> api,
               const util::Clock* clock)
{
  if (!api) {
    api = http_api_factory();
  }
  auto core =
    std::make_unique<detail::Core>(executor, config, store, clock ? *clock : util::system_clock());
  if (!config->signing_key.empty()) {
    auto key = crypto::SigningKey::load(config->signing_key);
    if (!key) {
      return util::make_error("config", fmt::format("{}: signing_key: {}",
                                                    config->signing_key_mark.to_string(),
                                                    key.error().message));
    }
    core->signing_key.emplace(std::move(*key));
  }
  // auth: self (per controller or per user) and admin_token_rotation keep tokens sealed to
  // the state key (and a rotated admin token stays in use after admin_token_rotation left
  // the config).
  const bool any_self =
    std::any_of(config->users.begin(), config->users.end(),
                [](const config::User& u) { return u.auth == config::Auth::self; }) ||
    std::any_of(config->controllers.begin(), config->controllers.end(),
                [&](const config::Controller& c) {
                  if (c.auth == config::Auth::self || c.admin_token_rotation != nullptr) {
                    return true;
                  }
                  auto current = store.admin_current(c.name);
                  return current && *current && (*current)->sealed.has_value();
                });
  if (any_self) {
    // Made on first use in state_dir unless configured or given as a systemd credential.
    auto key = crypto::StateKey::load(crypto::state_key_path(config->state_key, config->state_dir));
    if (!key) {
      return util::make_error("config", key.error().message);
    }
    core->state_key.emplace(std::move(*key));
  }
  std::map<std::string, crypto::PublicKey> keys;
  for (const auto& r : config->recipients) {
    auto key = crypto::PublicKey::load(r.path);
    if (!key) {
      return util::make_error("config", fmt::format("{}: recipients.{}: {}", r.mark.to_string(),
                                                    r.name, key.error().message));
    }
    keys.emplace(r.name, *key);
  }
  for (const auto& c : config->controllers) {
    auto made = api->make(executor, *config, c);
    if (!made) {
      const auto& e = made.error();
      // A token file's error names the controller already; a client's does not.
      return util::make_error("config", e.message.starts_with(c.name)
                                          ? e.message
                                          : fmt::format("controller {}: {}", c.name, e.message));
    }
    // The newest committed admin token from the state wins over admin_token_file.
    if (auto r =
          load_admin_credential(c, store, core->state_key ? &*core->state_key : nullptr, **made);
        !r) {
      return r.error();
    }
    detail::Controller entry;
    entry.config = &c;
    entry.api = std::move(*made);
    core->controllers.emplace(c.name, std::move(entry));
    const bool self_users =
      c.auth == config::Auth::admin &&
      std::any_of(config->users.begin(), config->users.end(), [&](const config::User& u) {
        return u.controller == c.name && u.auth == config::Auth::self;
      });
    if (self_users) {
      // auth: self per user: a lane of their own with a client that holds no admin token.
      auto own = std::make_unique<config::Controller>(c);
      own->auth = config::Auth::self;
      own->admin_user.clear();
      own->admin_token_file.clear();
      own->admin_token_rotation.reset(); // the admin lane rotates the admin token
      auto self_api = api->make(executor, *config, *own);
      if (!self_api) {
        return util::make_error("config",
                                fmt::format("controller {}: {}", c.name, self_api.error().message));
      }
      detail::Controller part;
      part.config = own.get();
      part.own_config = std::move(own);
      part.api = std::move(*self_api);
      auto& placed =
        core->controllers.emplace(detail::self_part_key(c.name), std::move(part)).first->second;
      core->controllers.at(c.name).self_part = &placed;
    }
  }
  // The slots' rows in one query (a reload of 10,000 users runs on the io thread). A row
  // whose display name differs is left without id: the first pass updates it.
  auto rows = store.slots();
  if (!rows) {
    return rows.error();
  }
  std::map<std::pair<std::string_view, std::string_view>, const state::Slot*> known;
  for (const auto& r : *rows) {
    known.emplace(std::make_pair(std::string_view(r.controller), std::string_view(r.user_key)), &r);
  }
  core->slots.reserve(config->users.size());
  // The sinks' recipient lists, one per distinct list of names.
  std::map<std::vector<std::string>, std::shared_ptr<const std::vector<crypto::Recipient>>> lists;
  for (const auto& u : config->users) {
    detail::SlotEntry s;
    s.user = &u;
    s.slot_name = u.slot();
    const auto user_key = config::fold_user_id(u.user);
    if (const auto it =
          known.find(std::make_pair(std::string_view(u.controller), std::string_view(user_key)));
        it != known.end() && it->second->user_display == u.user) {
      s.id = it->second->id;
    }
    for (const auto& sc : u.sinks) {
      detail::SinkEntry e;
      e.config = &sc;
      auto sink = sinks::make_sink(sc, executor);
      if (!sink) {
        return util::make_error("config", fmt::format("{}: {}: {}", sc.mark.to_string(),
                                                      s.slot_name, sink.error().message));
      }
      e.sink = std::move(*sink);
      e.hash = sinks::config_hash(sc);
      for (const auto& name : sc.recipients) {
        e.hash += ":" + keys.at(name).key_id();
      }
      auto& shared = lists[sc.recipients];
      if (!shared) {
        std::vector<crypto::Recipient> list;
        list.reserve(sc.recipients.size());
        for (const auto& name : sc.recipients) {
          list.push_back(crypto::Recipient{ name, keys.at(name) });
        }
        shared = std::make_shared<const std::vector<crypto::Recipient>>(std::move(list));
      }
      e.recipients = shared;
      s.sinks.push_back(std::move(e));
    }
    core->slots.push_back(std::move(s));
  }
  for (auto& s : core->slots) {
    auto& c = core->controllers.at(s.user->controller);
    if (c.self_part && s.user->auth == config::Auth::self) {
      core->controllers.at(detail::self_part_key(s.user->controller)).slots.push_back(&s);
    } else {
      c.slots.push_back(&s);
    }
  }
  return std::unique_ptr<Engine>(new Engine(std::move(core)));
}

Engine::Engine(std::unique_ptr<detail::Core> core)
  : m_core(std::move(core))
{
}

Engine::~Engine() = default;

asio::awaitable<PassResult>
Engine::run(PassRequest request, PassObserver* observer)
{
  detail::Pass pass(*m_core, std::move(request), observer);
  co_return co_await pass.run();
}

void
Engine::request_stop()
{
  m_core->stop.request();
}

bool
Engine::stop_requested() const
{
  return m_core->stop.requested();
}

const config::Config&
Engine::config() const
{
  return *m_core->config;
}

std::shared_ptr<const config::Config>
Engine::config_ptr() const
{
  return m_core->config;
}

} // namespace rotation
