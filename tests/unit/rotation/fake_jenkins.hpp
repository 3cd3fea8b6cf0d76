#pragma once

#include "rotation/api_factory.hpp"
#include "rotation/pass.hpp"
#include "util/clock.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

// An in-process Jenkins for the engine's unit tests: users and their tokens in memory,
// every call recorded, and failures to order per operation. Implements jenkins::Api the
// way DESIGN §2.3 and reference/jenkins-api.md describe the real scripts.
namespace rotation_test {

struct FakeToken
{
  std::string uuid;
  std::string name;
  std::string secret; // "11" + 32 hex, as Jenkins makes them
  std::int64_t created_ms = 0;
  bool expired = false;
  std::optional<std::int64_t> expires_ms; // on the fake's clock; nullopt: never
  std::optional<std::int64_t> last_use_ms;
};

struct FakeCall
{
  std::string controller;
  rotation::RequestOp op;
  std::vector<std::string> users; // list, mint, revoke, verify: the users asked about
};

class FakeJenkins
{
public:
  explicit FakeJenkins(const util::Clock& clock);

  // --- the world ---
  void add_user(const std::string& user) { m_users[user]; }
  void remove_user(const std::string& user) { m_users.erase(user); }
  // Revoked out of band (an administrator, another tool).
  void clear_tokens(const std::string& user) { m_users[user].clear(); }
  // A token made by hand (another tool, another instance): its uuid.
  std::string plant(const std::string& user, const std::string& name,
                    std::chrono::seconds age = std::chrono::seconds(0));
  // A token with a known value (the bootstrap token an operator made): its uuid.
  std::string plant_value(const std::string& user, const std::string& name,
                          const std::string& secret);
  [[nodiscard]] std::vector<FakeToken> tokens(const std::string& user) const;
  [[nodiscard]] std::vector<std::string> token_names(const std::string& user) const;
  [[nodiscard]] std::optional<FakeToken> token_named(const std::string& user,
                                                     const std::string& name) const;
  [[nodiscard]] bool has_uuid(const std::string& uuid) const;

  // --- calls ---
  std::vector<FakeCall> calls;
  [[nodiscard]] int count(rotation::RequestOp op) const;
  [[nodiscard]] int minted() const { return m_minted; }
  [[nodiscard]] std::int64_t now_ms_for_test() const { return now_ms(); }

  // --- failures to order ---
  std::optional<net::FailureKind> fail_probe; // every probe fails so
  std::optional<net::FailureKind> fail_list;  // every list fails so
  std::optional<net::FailureKind> fail_mint;  // the next mints fail so, nothing made
  int fail_mint_times = 0;                    // … this many times (0: never)
  int lose_mint_answers = 0;                  // the next N mints run, answers lost
  int lose_mint_unmade = 0;                   // the next N mints: lost before running
  bool revoke_broken = false;                 // every revoke item fails
  std::set<std::string> verify_500;           // users outside the realm (whoAmI 500)
  std::set<std::string> verify_401;           // users whose new tokens whoAmI refuses
  // Jenkins' clock minus the test's: mints expire `lifetime` after the fake's now, list
  // reports and verify refuses tokens past it, the probe shows the skew.
  std::chrono::seconds skew{ 0 };
  std::chrono::milliseconds probe_delay{ 0 }; // a slow controller
  // REST (auth: self): the version /whoAmI names, and the next N addFixedToken answers
  // lost after the token was stored (run) or before (unmade).
  std::string rest_version = "2.560";
  int lose_rest_mints = 0;
  int lose_rest_unmade = 0;
  // Calls that were scripts (probe, list, mint, revoke through the script console): an
  // auth: self controller must make none.
  std::map<std::string, int> scripts; // per controller
  std::chrono::milliseconds mint_delay{ 0 };
  std::chrono::milliseconds verify_delay{ 0 };
  // The most mints and verifications the engine had in flight at once.
  int most_mints_in_flight = 0;
  int most_verifies_in_flight = 0;

  // Serves every controller of a config.
  std::unique_ptr<rotation::ApiFactory> factory();

private:
  friend class FakeApi;
  std::string next_uuid();
  std::int64_t now_ms() const; // the fake's clock: the test's plus skew
  std::int64_t local_ms() const;
  bool expired(const FakeToken& t) const
  {
    return t.expired || (t.expires_ms && now_ms() >= *t.expires_ms);
  }

  const util::Clock& m_clock;
  std::map<std::string, std::vector<FakeToken>> m_users;
  int m_id;
  int m_uuids = 0;
  int m_minted = 0;
  int m_mints_in_flight = 0;
  int m_verifies_in_flight = 0;
};

// Serves each controller from its own fake (a controller missing from the map: an error).
std::unique_ptr<rotation::ApiFactory> factory_of(std::map<std::string, FakeJenkins*> fakes);

} // namespace rotation_test
