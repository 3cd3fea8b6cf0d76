#pragma once

#include "config/config.hpp"
#include "crypto/envelope.hpp"
#include "crypto/signing_key.hpp"
#include "crypto/state_key.hpp"
#include "jenkins/api.hpp"
#include "rotation/stop.hpp"
#include "sinks/sink.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

// What a rotation::Engine keeps between passes (internal to rotation/): the config
// snapshot, one Jenkins Api per controller, the sinks and the slot table. A pass
// (pass_impl.hpp) reads it and keeps its own state apart.
namespace rotation::detail {

// One configured sink, ready to deliver, with the hash the state store keeps.
struct SinkEntry
{
  const config::Sink* config = nullptr;
  std::unique_ptr<sinks::Sink> sink;
  // Shared by every sink that names the same recipients (one list, not one per slot).
  std::shared_ptr<const std::vector<crypto::Recipient>> recipients;
  std::string hash; // sinks::config_hash + the recipients' key ids
};

struct SlotEntry
{
  const config::User* user = nullptr;
  std::string slot_name; // controller/user, config::User::slot()
  // The state's row; made by the first pass that writes (a preview writes nothing).
  std::optional<state::SlotId> id;
  std::vector<SinkEntry> sinks;
};

struct Controller
{
  const config::Controller* config = nullptr;
  std::unique_ptr<jenkins::Api> api;
  std::vector<SlotEntry*> slots; // in config order
  // The users with `auth: self` of an admin controller run in a lane of their own (the
  // "self part", keyed self_part_key(name)): `config` is then a copy of the controller
  // with auth: self and no admin keys, so every step takes the REST path for them and
  // their client carries no admin credential. On the admin part: its self part, if any.
  std::unique_ptr<const config::Controller> own_config;
  const Controller* self_part = nullptr;
  [[nodiscard]] bool is_self_part() const { return own_config != nullptr; }
};

// The key of an admin controller's self part in Core::controllers (a space is not valid
// in a controller name, so it meets no other controller's key).
inline std::string
self_part_key(const std::string& controller)
{
  return controller + " (self)";
}

struct Core
{
  Core(boost::asio::any_io_executor ex, std::shared_ptr<const config::Config> c, state::Store& s,
       const util::Clock& k)
    : executor(std::move(ex))
    , config(std::move(c))
    , store(s)
    , clock(k)
  {
  }

  boost::asio::any_io_executor executor;
  std::shared_ptr<const config::Config> config;
  state::Store& store;
  const util::Clock& clock;
  std::vector<SlotEntry> slots; // never resized after create(): Controller::slots point in
  std::map<std::string, Controller> controllers;
  std::mt19937_64 rng{ std::random_device{}() };
  Stop stop;
  // `signing_key` from the config: every envelope is signed with it (DESIGN §6).
  std::optional<crypto::SigningKey> signing_key;
  // The daemon's state key, when a controller has auth: self (docs/self-rotation.md).
  std::optional<crypto::StateKey> state_key;
};

} // namespace rotation::detail
