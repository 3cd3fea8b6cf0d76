#include "rotation/fake_jenkins.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <algorithm>

namespace rotation_test {

namespace asio = boost::asio;

namespace {
int g_fakes = 0; // tells the uuids of two fakes apart
} // namespace

FakeJenkins::FakeJenkins(const util::Clock& clock)
  : m_clock(clock)
  , m_id(++g_fakes)
{
}

std::string
FakeJenkins::next_uuid()
{
  ++m_uuids;
  return fmt::format("{:08x}-0000-4000-8000-{:012x}", m_uuids, m_id);
}

std::int64_t
FakeJenkins::local_ms() const
{
  return std::chrono::duration_cast<std::chrono::milliseconds>(m_clock.now().time_since_epoch())
    .count();
}

std::int64_t
FakeJenkins::now_ms() const
{
  return local_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(skew).count();
}

std::string
FakeJenkins::plant(const std::string& user, const std::string& name, std::chrono::seconds age)
{
  FakeToken t;
  t.uuid = next_uuid();
  t.name = name;
  t.secret = fmt::format("11{:032x}", m_uuids);
  t.created_ms = now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(age).count();
  m_users[user].push_back(t);
  return t.uuid;
}

std::vector<FakeToken>
FakeJenkins::tokens(const std::string& user) const
{
  const auto it = m_users.find(user);
  return it == m_users.end() ? std::vector<FakeToken>() : it->second;
}

std::vector<std::string>
FakeJenkins::token_names(const std::string& user) const
{
  std::vector<std::string> out;
  for (const auto& t : tokens(user)) {
    out.push_back(t.name);
  }
  return out;
}

std::optional<FakeToken>
FakeJenkins::token_named(const std::string& user, const std::string& name) const
{
  for (const auto& t : tokens(user)) {
    if (t.name == name) {
      return t;
    }
  }
  return std::nullopt;
}

std::string
FakeJenkins::plant_value(const std::string& user, const std::string& name,
                         const std::string& secret)
{
  FakeToken t;
  t.uuid = next_uuid();
  t.name = name;
  t.secret = secret;
  t.created_ms = now_ms();
  m_users[user].push_back(t);
  return t.uuid;
}

bool
FakeJenkins::has_uuid(const std::string& uuid) const
{
  return std::any_of(m_users.begin(), m_users.end(), [&](const auto& u) {
    return std::any_of(u.second.begin(), u.second.end(),
                       [&](const FakeToken& t) { return t.uuid == uuid; });
  });
}

int
FakeJenkins::count(rotation::RequestOp op) const
{
  return static_cast<int>(
    std::count_if(calls.begin(), calls.end(), [&](const FakeCall& c) { return c.op == op; }));
}

class FakeApi : public jenkins::Api
{
public:
  FakeApi(FakeJenkins& fake, std::string controller)
    : m_fake(fake)
    , m_controller(std::move(controller))
  {
  }

  asio::awaitable<net::Result<jenkins::ProbeResult>> probe() override
  {
    ++m_fake.scripts[m_controller];
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::probe, {} });
    co_await pause(m_fake.probe_delay);
    if (m_fake.fail_probe) {
      co_return failure(*m_fake.fail_probe);
    }
    jenkins::ProbeResult p;
    p.version = "2.560";
    p.now_millis = m_fake.now_ms();
    p.local_millis = m_fake.local_ms();
    p.zone = "UTC";
    p.expiring_tokens = true;
    p.helpers = true;
    p.token_store = true;
    p.usage_statistics = true;
    p.administer = true;
    co_return p;
  }

  asio::awaitable<net::Result<jenkins::ListAnswer>> list(std::vector<std::string> users) override
  {
    ++m_fake.scripts[m_controller];
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::list, users });
    if (m_fake.fail_list) {
      co_return failure(*m_fake.fail_list);
    }
    jenkins::ListAnswer a;
    a.clock.now_ms = m_fake.now_ms();
    a.usage_statistics = true;
    for (const auto& u : users) {
      jenkins::UserTokens ut;
      ut.user = u;
      const auto it = m_fake.m_users.find(u);
      if (it == m_fake.m_users.end()) {
        ut.error = jenkins::ItemError{ "unknown_user", fmt::format("no such user: {}", u) };
      } else {
        for (const auto& t : it->second) {
          jenkins::TokenInfo info;
          info.uuid = t.uuid;
          info.name = t.name;
          info.created_ms = t.created_ms;
          info.expired = m_fake.expired(t);
          info.last_use_ms = t.last_use_ms;
          ut.tokens.push_back(info);
        }
      }
      a.users.push_back(std::move(ut));
    }
    co_return a;
  }

  asio::awaitable<net::Result<jenkins::MintAnswer>> mint(
    jenkins::Variant, std::vector<jenkins::MintItem> items) override
  {
    std::vector<std::string> users;
    for (const auto& i : items) {
      users.push_back(i.user);
    }
    ++m_fake.scripts[m_controller];
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::mint, users });
    m_fake.most_mints_in_flight = std::max(m_fake.most_mints_in_flight, ++m_fake.m_mints_in_flight);
    co_await pause(m_fake.mint_delay);
    --m_fake.m_mints_in_flight;
    if (m_fake.fail_mint_times > 0 && m_fake.fail_mint) {
      --m_fake.fail_mint_times;
      co_return failure(*m_fake.fail_mint);
    }
    if (m_fake.lose_mint_unmade > 0) {
      --m_fake.lose_mint_unmade;
      co_return failure(net::FailureKind::outcome_unknown);
    }
    jenkins::MintAnswer a;
    a.clock.now_ms = m_fake.now_ms();
    for (const auto& i : items) {
      jenkins::MintResult r;
      const auto it = m_fake.m_users.find(i.user);
      if (it == m_fake.m_users.end()) {
        r.error = jenkins::ItemError{ "unknown_user", fmt::format("no such user: {}", i.user) };
        a.items.push_back(std::move(r));
        continue;
      }
      FakeToken t;
      t.uuid = m_fake.next_uuid();
      t.name = i.name;
      t.secret = fmt::format("11{:032x}", 0xabc000 + m_fake.m_uuids);
      t.created_ms = m_fake.now_ms();
      // Jenkins' expiry counts from its own now (the mint script adds the lifetime).
      t.expires_ms = t.created_ms + i.lifetime.count() * 1000;
      it->second.push_back(t);
      ++m_fake.m_minted;
      jenkins::Minted m;
      m.uuid = t.uuid;
      m.jenkins_expires_ms = t.expires_ms;
      const std::string_view secret = t.secret;
      m.token = crypto::SecretBytes::copy_of(
                  std::span<const unsigned char>(
                    reinterpret_cast<const unsigned char*>(secret.data()), secret.size()))
                  .value();
      r.minted = std::move(m);
      a.items.push_back(std::move(r));
    }
    if (m_fake.lose_mint_answers > 0) {
      --m_fake.lose_mint_answers;
      co_return failure(net::FailureKind::outcome_unknown);
    }
    co_return a;
  }

  asio::awaitable<net::Result<jenkins::RevokeAnswer>> revoke(
    jenkins::Variant, std::vector<jenkins::RevokeItem> items) override
  {
    std::vector<std::string> users;
    for (const auto& i : items) {
      users.push_back(i.user);
    }
    ++m_fake.scripts[m_controller];
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::revoke, users });
    jenkins::RevokeAnswer a;
    a.clock.now_ms = m_fake.now_ms();
    for (const auto& i : items) {
      jenkins::RevokeResult r;
      auto& tokens = m_fake.m_users[i.user];
      const auto it = std::find_if(tokens.begin(), tokens.end(),
                                   [&](const FakeToken& t) { return t.uuid == i.uuid; });
      if (m_fake.revoke_broken) {
        r.outcome = jenkins::RevokeOutcome::failed;
        r.error = jenkins::ItemError{ "exception", "revoke refused (fake)" };
      } else if (it == tokens.end()) {
        r.outcome = jenkins::RevokeOutcome::not_found;
      } else {
        tokens.erase(it);
        r.outcome = jenkins::RevokeOutcome::revoked;
      }
      a.items.push_back(std::move(r));
    }
    co_return a;
  }

  asio::awaitable<net::Result<void>> verify(std::string user,
                                            const crypto::SecretBytes& token) override
  {
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::verify, { user } });
    m_fake.most_verifies_in_flight =
      std::max(m_fake.most_verifies_in_flight, ++m_fake.m_verifies_in_flight);
    co_await pause(m_fake.verify_delay);
    --m_fake.m_verifies_in_flight;
    if (m_fake.verify_500.count(user) != 0) {
      co_return net::Failure{ net::FailureKind::http_status, 500, "whoAmI: 500 (fake)" };
    }
    if (m_fake.verify_401.count(user) != 0) {
      co_return net::Failure{ net::FailureKind::auth, 401, "whoAmI: 401 (fake)" };
    }
    const std::string given(reinterpret_cast<const char*>(token.view().data()), token.size());
    for (const auto& t : m_fake.tokens(user)) {
      if (t.secret == given && !m_fake.expired(t)) {
        co_return net::Result<void>();
      }
    }
    co_return net::Failure{ net::FailureKind::auth, 401, "whoAmI: 401 (fake)" };
  }

  // --- REST (auth: self), as reference §4 says Jenkins answers -------------------------

  // The user whose token `as` is, or nullopt (401).
  std::optional<std::string> login(const std::string& user, const crypto::SecretBytes& as) const
  {
    const std::string given(reinterpret_cast<const char*>(as.view().data()), as.size());
    for (const auto& t : m_fake.tokens(user)) {
      if (t.secret == given && !t.expired) {
        return user;
      }
    }
    return std::nullopt;
  }

  static net::Failure refused()
  {
    return net::Failure{ net::FailureKind::auth, 401, "401 (fake)" };
  }

  asio::awaitable<net::Result<jenkins::RestProbe>> rest_probe(
    std::string user, const crypto::SecretBytes& as) override
  {
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::probe, { user } });
    if (!login(user, as)) {
      co_return refused();
    }
    const auto n = jenkins::version_number(m_fake.rest_version).value_or(0);
    co_return jenkins::RestProbe{ m_fake.rest_version, n >= 2260, n >= 2548 };
  }

  asio::awaitable<net::Result<std::string>> add_fixed_token(
    std::string user, const crypto::SecretBytes& as, std::string name,
    const crypto::SecretBytes& value, std::optional<std::string> expiration) override
  {
    // Named: GCC 12 mishandles unnamed by-value coroutine parameters.
    m_last_expiration = std::move(expiration);
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::mint, { user } });
    if (!login(user, as)) {
      co_return refused();
    }
    if (m_fake.lose_rest_unmade > 0) {
      --m_fake.lose_rest_unmade;
      co_return failure(net::FailureKind::outcome_unknown);
    }
    FakeToken t;
    t.uuid = m_fake.next_uuid();
    t.name = std::move(name);
    t.secret.assign(reinterpret_cast<const char*>(value.view().data()), value.size());
    t.created_ms = m_fake.now_ms();
    m_fake.m_users[user].push_back(t);
    ++m_fake.m_minted;
    if (m_fake.lose_rest_mints > 0) {
      --m_fake.lose_rest_mints;
      co_return failure(net::FailureKind::outcome_unknown);
    }
    co_return t.uuid;
  }

  asio::awaitable<net::Result<void>> rest_revoke(std::string user, const crypto::SecretBytes& as,
                                                 std::string uuid) override
  {
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::revoke, { user } });
    if (!login(user, as)) {
      co_return refused();
    }
    auto& tokens = m_fake.m_users[user];
    std::erase_if(tokens, [&](const FakeToken& t) { return t.uuid == uuid; });
    co_return net::Result<void>();
  }

  asio::awaitable<net::Result<void>> rest_revoke_all_except(std::string user,
                                                            const crypto::SecretBytes& as,
                                                            std::string keep) override
  {
    m_fake.calls.push_back({ m_controller, rotation::RequestOp::revoke, { user } });
    if (!login(user, as)) {
      co_return refused();
    }
    auto& tokens = m_fake.m_users[user];
    std::erase_if(tokens, [&](const FakeToken& t) { return t.uuid != keep; });
    co_return net::Result<void>();
  }

private:
  static net::Failure failure(net::FailureKind kind)
  {
    return net::Failure{ kind, kind == net::FailureKind::http_status ? 500 : 0,
                         fmt::format("fake: {}", net::to_string(kind)) };
  }

  static asio::awaitable<void> pause(std::chrono::milliseconds d)
  {
    if (d.count() > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor, d);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  FakeJenkins& m_fake;
  std::string m_controller;
  std::optional<std::string> m_last_expiration;
};

namespace {

class FakeFactory : public rotation::ApiFactory
{
public:
  explicit FakeFactory(std::map<std::string, FakeJenkins*> fakes, FakeJenkins* all = nullptr)
    : m_fakes(std::move(fakes))
    , m_all(all)
  {
  }

  util::Result<std::unique_ptr<jenkins::Api>> make(asio::any_io_executor, const config::Config&,
                                                   const config::Controller& c) override
  {
    FakeJenkins* fake = m_all;
    if (!fake) {
      const auto it = m_fakes.find(c.name);
      if (it == m_fakes.end()) {
        return util::make_error("config", "no fake for " + c.name);
      }
      fake = it->second;
    }
    return std::unique_ptr<jenkins::Api>(std::make_unique<FakeApi>(*fake, c.name));
  }

private:
  std::map<std::string, FakeJenkins*> m_fakes;
  FakeJenkins* m_all;
};

} // namespace

std::unique_ptr<rotation::ApiFactory>
FakeJenkins::factory()
{
  return std::make_unique<FakeFactory>(std::map<std::string, FakeJenkins*>(), this);
}

std::unique_ptr<rotation::ApiFactory>
factory_of(std::map<std::string, FakeJenkins*> fakes)
{
  return std::make_unique<FakeFactory>(std::move(fakes));
}

} // namespace rotation_test
