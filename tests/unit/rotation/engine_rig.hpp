#pragma once

#include "rotation/engine.hpp"
#include "rotation/fake_jenkins.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

#include <boost/asio/io_context.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

// The engine on real files (a temporary directory: config, recipient key, state database,
// file sinks) against FakeJenkins, with a hand-driven clock.
namespace rotation_test {

// Everything an observer heard, in order.
class Recorder : public rotation::PassObserver
{
public:
  std::vector<rotation::SlotReport> slots;
  std::vector<std::pair<std::string, state::SinkOutcome>> sinks;       // user, outcome
  std::vector<std::pair<std::string, rotation::RevokeReason>> revoked; // user, reason (ok)
  std::vector<std::pair<std::string, rotation::RevokeReason>> revoke_failed;
  std::vector<std::pair<std::string, rotation::RequestOp>> requests; // controller, op
  std::vector<std::string> controllers_reached;
  std::vector<std::pair<std::string, rotation::ControllerFacts>> probes;
  int passes = 0;

  void on_slot(const rotation::SlotReport& r) override { slots.push_back(r); }
  void on_sink(const std::string&, const std::string& user, config::SinkType,
               state::SinkOutcome outcome) override
  {
    sinks.emplace_back(user, outcome);
  }
  void on_revoke(const std::string&, const std::string& user, rotation::RevokeReason reason,
                 bool ok) override
  {
    (ok ? revoked : revoke_failed).emplace_back(user, reason);
  }
  void on_request(const std::string& controller, rotation::RequestOp op, int,
                  std::chrono::milliseconds) override
  {
    requests.emplace_back(controller, op);
  }
  void on_controller(const std::string& controller, bool reachable, bool) override
  {
    if (reachable) {
      controllers_reached.push_back(controller);
    }
  }
  void on_probe(const std::string& controller, const rotation::ControllerFacts& facts) override
  {
    probes.emplace_back(controller, facts);
  }
  void on_pass(const rotation::PassRequest&, const rotation::PassResult&) override { ++passes; }
};

struct RigOptions
{
  std::vector<std::string> users{ "svc-a", "svc-b" };
  std::vector<std::string> controllers{ "ci" }; // users go to the first unless "ctl/user"
  std::string user_extra;                       // YAML lines added to every user entry
  int sinks = 1;                                // file sinks per user
  bool exec_sink = false;                       // an exec sink (hook `hook`) after them
  int batch_size = 50;
  int max_concurrent = 4;
  int verify_concurrent = 16;
  // Controllers with auth: self (no admin credential). Their users get prune: all and a
  // bootstrap_token_file whose token the fake holds (bootstrap_value(user)).
  std::vector<std::string> self_controllers;
  // Users that say auth: self on an admin controller (the same bootstrap as above).
  std::vector<std::string> self_users;
};

// The bootstrap token the rig gives `user` of a self controller.
std::string bootstrap_value(const std::string& user);

class Rig
{
public:
  explicit Rig(RigOptions options = {});
  ~Rig();
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  // One pass on a fresh engine (as `once` does); `fakes` per controller, default `jenkins`.
  rotation::PassResult pass(rotation::PassRequest request = {});
  // The same engine for several passes, and a stop request after `stop_after`.
  std::unique_ptr<rotation::Engine> engine();
  rotation::PassResult run(rotation::Engine& engine, rotation::PassRequest request,
                           std::optional<std::chrono::milliseconds> stop_after = std::nullopt);

  state::Store& store() { return *m_store; }
  std::optional<state::Slot> slot(const std::string& user, const std::string& controller = "ci");
  std::vector<state::Attempt> attempts(const std::string& user);
  std::vector<std::string> audit_events();
  std::string sink_path(const std::string& user, int index = 0) const;
  std::string hook_path() const;
  void write_hook(const std::string& body);
  void break_sink(const std::string& user, int index, bool broken);
  std::string dir() const { return m_dir; }
  // An attempt left `minted` by a process that died after mint (its plain token lost):
  // its token is in Jenkins, its envelopes in the state. Returns the token's uuid.
  std::string plant_minted_attempt(const std::string& user);

  util::ManualClock clock;
  FakeJenkins jenkins{ clock };
  std::map<std::string, FakeJenkins*> fakes; // other controllers' fakes
  Recorder observer;
  boost::asio::io_context io;

private:
  RigOptions m_options;
  std::string m_dir;
  std::shared_ptr<const config::Config> m_config;
  std::optional<state::Store> m_store;
};

const rotation::SlotReport* find(const rotation::PassResult& r, const std::string& slot);

} // namespace rotation_test
