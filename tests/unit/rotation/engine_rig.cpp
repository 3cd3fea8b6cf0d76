#include "rotation/engine_rig.hpp"

#include "config/loader.hpp"
#include "crypto/envelope.hpp"
#include "crypto/private_key.hpp"
#include "schedule/schedule.hpp"
#include "sinks/sink.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

namespace rotation_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

void
write(const std::string& path, const std::string& text, mode_t mode)
{
  std::ofstream(path, std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

} // namespace

Rig::Rig(RigOptions options)
  : clock(util::Time(std::chrono::seconds(1767571200))) // 2026-01-05T00:00:00Z
  , m_options(std::move(options))
{
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = fmt::format("{}/jtr-engine-XXXXXX", base != nullptr ? base : "/tmp");
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  m_dir = tmpl;
  ::chmod(m_dir.c_str(), 0755);
  for (const char* sub : { "state", "out", "hooks" }) {
    std::filesystem::create_directory(m_dir + "/" + sub);
  }
  ::chmod((m_dir + "/state").c_str(), 0700);
  write(m_dir + "/admin-token", "11aaaabbbbccccddddeeeeffff00001111\n", 0600);
  const auto key = crypto::PrivateKey::generate().value();
  write(m_dir + "/deploy.pub", key.public_key().to_base64() + "\n", 0644);
  write_hook("#!/bin/sh\ncat > /dev/null\n");

  std::string yaml = fmt::format("state_dir: {}/state\n"
                                 "retry: {{attempts: 1, initial: 1s, max: 1s}}\n"
                                 "controllers:\n",
                                 m_dir);
  const auto is_self = [&](const std::string& c) {
    return std::find(m_options.self_controllers.begin(), m_options.self_controllers.end(), c) !=
           m_options.self_controllers.end();
  };
  for (const auto& c : m_options.controllers) {
    if (is_self(c)) {
      yaml += fmt::format("  - {{name: {0}, url: http://127.0.0.1:9/{0}/, auth: self, "
                          "batch_size: {1}}}\n",
                          c, m_options.batch_size);
      continue;
    }
    yaml += fmt::format("  - {{name: {0}, url: http://127.0.0.1:9/{0}/, admin_user: admin, "
                        "admin_token_file: {1}/admin-token, batch_size: {2}, "
                        "max_concurrent: {3}, verify_concurrent: {4}}}\n",
                        c, m_dir, m_options.batch_size, m_options.max_concurrent,
                        m_options.verify_concurrent);
  }
  yaml += fmt::format("recipients:\n  deploy: {}/deploy.pub\n"
                      "defaults:\n  schedule: every 7d\n  jitter: 0s\n  lifetime: 30d\n"
                      "  grace: 1h\n  failure_budget: 1d\n"
                      "users:\n",
                      m_dir);
  for (const auto& entry : m_options.users) {
    const auto slash = entry.find('/');
    const auto controller =
      slash == std::string::npos ? m_options.controllers.front() : entry.substr(0, slash);
    const auto user = slash == std::string::npos ? entry : entry.substr(slash + 1);
    yaml += fmt::format("  - user: {}\n    controller: {}\n", user, controller);
    if (!m_options.user_extra.empty()) {
      yaml += "    " + m_options.user_extra + "\n";
    }
    const bool self_user = std::find(m_options.self_users.begin(), m_options.self_users.end(),
                                     user) != m_options.self_users.end();
    if (self_user) {
      yaml += "    auth: self\n";
    }
    if (is_self(controller) || self_user) {
      const auto file = fmt::format("{}/bootstrap-{}", m_dir, user);
      write(file, bootstrap_value(user) + "\n", 0600);
      yaml += fmt::format("    prune: all\n    bootstrap_token_file: {}\n", file);
      auto* fake = fakes.count(controller) != 0 ? fakes.at(controller) : &jenkins;
      fake->plant_value(user, "bootstrap", bootstrap_value(user));
    }
    yaml += "    sinks:\n";
    for (int i = 0; i < m_options.sinks; ++i) {
      yaml +=
        fmt::format("      - {{type: file, path: {}, recipients: [deploy]}}\n", sink_path(user, i));
    }
    if (m_options.exec_sink) {
      yaml += fmt::format(
        "      - {{type: exec, command: [{}], recipients: [deploy], timeout: 30s}}\n", hook_path());
    }
    jenkins.add_user(user);
  }
  write(m_dir + "/config.yaml", yaml, 0600);
  auto loaded = config::load(m_dir + "/config.yaml");
  REQUIRE_MESSAGE(loaded.has_value(), (loaded ? std::string() : loaded.error().message));
  m_config = std::make_shared<const config::Config>(std::move(*loaded));
  auto store = state::Store::open(m_dir + "/state", crypto::check_envelope);
  REQUIRE_MESSAGE(store.has_value(), (store ? std::string() : store.error().message));
  m_store.emplace(std::move(*store));
}

std::string
bootstrap_value(const std::string& user)
{
  // "11" + 32 hex, distinct per user.
  return fmt::format("11{:032x}", std::hash<std::string>{}(user)&0xffffffffffffULL);
}

Rig::~Rig()
{
  m_store.reset();
  std::error_code ec;
  std::filesystem::remove_all(m_dir, ec);
}

std::unique_ptr<rotation::Engine>
Rig::engine()
{
  auto factory = fakes.empty() ? jenkins.factory() : factory_of(fakes);
  auto e =
    rotation::Engine::create(io.get_executor(), m_config, *m_store, std::move(factory), &clock);
  REQUIRE_MESSAGE(e.has_value(), (e ? std::string() : e.error().message));
  return std::move(*e);
}

rotation::PassResult
Rig::run(rotation::Engine& engine, rotation::PassRequest request,
         std::optional<std::chrono::milliseconds> stop_after)
{
  rotation::PassResult result;
  bool done = false;
  std::exception_ptr failure;
  asio::steady_timer stopper(io);
  if (stop_after) {
    stopper.expires_after(*stop_after);
    stopper.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) {
        engine.request_stop();
      }
    });
  }
  asio::co_spawn(io, engine.run(std::move(request), &observer),
                 [&](std::exception_ptr e, rotation::PassResult r) {
                   failure = e;
                   result = std::move(r);
                   done = true;
                   stopper.cancel();
                 });
  io.restart();
  io.run();
  REQUIRE(done);
  if (failure) {
    std::rethrow_exception(failure);
  }
  return result;
}

rotation::PassResult
Rig::pass(rotation::PassRequest request)
{
  auto e = engine();
  return run(*e, std::move(request));
}

std::optional<state::Slot>
Rig::slot(const std::string& user, const std::string& controller)
{
  auto s = m_store->find_slot(controller, config::fold_user_id(user));
  REQUIRE(s.has_value());
  return *s;
}

std::vector<state::Attempt>
Rig::attempts(const std::string& user)
{
  const auto s = slot(user);
  if (!s) {
    return {};
  }
  auto a = m_store->attempts_of_slot(s->id, 100);
  REQUIRE(a.has_value());
  return *a;
}

std::vector<std::string>
Rig::audit_events()
{
  auto entries = m_store->audit(std::nullopt, 1000);
  REQUIRE(entries.has_value());
  std::vector<std::string> out;
  for (auto it = entries->rbegin(); it != entries->rend(); ++it) {
    out.push_back(it->event + ": " + it->detail);
  }
  return out;
}

std::string
Rig::sink_path(const std::string& user, int index) const
{
  return fmt::format("{}/out/{}.{}.json", m_dir, user, index);
}

std::string
Rig::hook_path() const
{
  return m_dir + "/hooks/hook";
}

void
Rig::write_hook(const std::string& body)
{
  const auto tmp = hook_path() + ".tmp";
  write(tmp, body, 0755);
  std::filesystem::rename(tmp, hook_path());
}

void
Rig::break_sink(const std::string& user, int index, bool broken)
{
  const auto path = sink_path(user, index);
  std::error_code ec;
  if (broken) {
    std::filesystem::remove(path, ec);
    std::filesystem::create_directory(path); // a directory where the file should go
    std::filesystem::create_directory(path + "/keep");
  } else {
    std::filesystem::remove_all(path, ec);
  }
}

std::string
Rig::plant_minted_attempt(const std::string& user)
{
  const auto row = slot(user);
  REQUIRE(row);
  const auto seq = m_store->next_seq().value();
  const auto name = fmt::format("rotator-{}-{:06}", m_store->instance_id(), seq);
  const auto now = clock.now();
  REQUIRE(m_store->create_attempt(seq, row->id, name, now).has_value());
  const auto uuid = jenkins.plant(user, name);
  const auto key = crypto::PublicKey::load(m_dir + "/deploy.pub").value();
  const config::User* u = nullptr;
  for (const auto& x : m_config->users) {
    if (x.user == user) {
      u = &x;
    }
  }
  REQUIRE(u);
  crypto::Envelope info;
  info.controller = u->controller;
  info.url = "http://127.0.0.1:9/";
  info.user = user;
  info.token_name = name;
  info.token_uuid = uuid;
  info.created = schedule::format_utc(now);
  info.expires = schedule::format_utc(now + u->policy.lifetime);
  const std::string secret = "11000000000000000000000000000000ff";
  const auto token = crypto::SecretBytes::copy_of(
                       std::span<const unsigned char>(
                         reinterpret_cast<const unsigned char*>(secret.data()), secret.size()))
                       .value();
  std::vector<state::Envelope> envelopes;
  for (std::size_t i = 0; i < u->sinks.size(); ++i) {
    auto sealed = crypto::Envelope::seal(info, token, { crypto::Recipient{ "deploy", key } });
    REQUIRE(sealed.has_value());
    envelopes.push_back({ static_cast<int>(i), sinks::config_hash(u->sinks[i]) + ":" + key.key_id(),
                          sealed->to_json() });
  }
  state::MintedToken mt{ uuid, now, now + u->policy.lifetime, std::nullopt };
  auto minted = m_store->mark_minted(seq, mt, envelopes, now);
  REQUIRE_MESSAGE(minted.has_value(), (minted ? std::string() : minted.error().message));
  return uuid;
}

const rotation::SlotReport*
find(const rotation::PassResult& r, const std::string& slot)
{
  for (const auto& s : r.slots) {
    if (s.slot() == slot) {
      return &s;
    }
  }
  return nullptr;
}

} // namespace rotation_test
