#pragma once

#include "config/config.hpp"
#include "jenkins/api.hpp"
#include "rotation/pass.hpp"
#include "state/records.hpp"
#include "state/store.hpp"
#include "util/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace crypto {
class StateKey;
}

// admin_token_rotation (docs/admin-token-rotation.md): the parts the daemon, `once` and the
// engine share. The rotation itself is a step of each pass (Pass::admin_token).
namespace rotation {

// The name the admin token's due item has in the daemon's due table ("ci/@admin-token"):
// '@' cannot start a Jenkins user id of a configured slot, so it never names one.
constexpr std::string_view k_admin_token_user = "@admin-token";
std::string admin_token_slot(const std::string& controller);

// When the controller's admin token is next due: now when it was never rotated (the
// bootstrap token's age is unknown), else the schedule (with its jitter) from the last switch.
Time admin_next_due(const config::Controller& controller,
                    const std::optional<state::AdminToken>& current, Time now);

// Makes `api` authenticate with the controller's current admin token from the state (store:
// state) instead of admin_token_file, which stays the bootstrap; also once admin_token_rotation
// was removed from the config (the file's token was revoked: warned). Nothing to do without a
// rotated token or with store: file (the file holds it). Errors ("config"): a sealed value
// that does not open with `key` (or no key).
util::Result<void> load_admin_credential(const config::Controller& controller, state::Store& store,
                                         const crypto::StateKey* key, jenkins::Api& api);

} // namespace rotation
