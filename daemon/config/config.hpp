#pragma once

#include "schedule/schedule.hpp"
#include "schedule/zone.hpp"
#include "util/secret_text.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

// The validated configuration as plain structs (DESIGN §5). Nothing from the YAML
// parsers leaves config/: the node tree is freed once load() returns.
namespace config {

using Seconds = std::chrono::seconds;

// The name of the file a Mark points into. Every Mark of one load shares one copy (a
// 10,000-user config holds ~50,000 marks): copying a MarkFile copies a pointer.
class MarkFile
{
public:
  MarkFile() = default;
  MarkFile(std::string name) // NOLINT(google-explicit-constructor): a Mark{ "f", 1, 1 } reads well
    : m_name(std::make_shared<const std::string>(std::move(name)))
  {
  }
  MarkFile(const char* name) // NOLINT(google-explicit-constructor)
    : MarkFile(std::string(name))
  {
  }

  [[nodiscard]] const std::string& str() const;
  operator const std::string&() const { return str(); } // NOLINT(google-explicit-constructor)

private:
  std::shared_ptr<const std::string> m_name;
};

// Where a value was written, for messages after load (e.g. "a recipient key file
// does not parse"): FILE:LINE:COL, 1-based.
struct Mark
{
  MarkFile file;
  int line = 0;
  int column = 0;

  [[nodiscard]] std::string to_string() const;
};

struct Retry
{
  int attempts = 5;
  Seconds initial{ 2 };
  Seconds max{ 300 };
};

// How the daemon reaches a controller's tokens (docs/self-rotation.md).
enum class Auth
{
  admin, // the script console, as admin_user
  self   // REST, each user with its own current token; no admin credential
};

// Where a rotated admin token is kept (docs/admin-token-rotation.md).
enum class AdminTokenStore
{
  state, // sealed to the state key in the state database; admin_token_file stays the bootstrap
  file   // written atomically back to admin_token_file (same owner and mode)
};

struct Policy;

// `admin_token_rotation:` of a controller: the daemon rotates its own admin token.
struct AdminTokenRotation;

struct Controller
{
  std::string name;
  std::string url; // as written after expansion; always ends in '/'
  std::string admin_user;
  std::string admin_token_file; // expanded path; the token itself is read when connecting
  std::string ca_file;          // empty: the system store
  bool insecure_http = false;
  Seconds timeout{ 30 };
  int max_concurrent = 4;
  // /whoAmI verifications (a GET as the new token) in flight, beside max_concurrent's
  // scripts: they cost Jenkins a token check, not a Groovy run.
  int verify_concurrent = 16;
  int batch_size = 50;
  Auth auth = Auth::admin;
  Mark mark;
  // Set when the controller rotates its admin token (auth: admin only).
  std::shared_ptr<const AdminTokenRotation> admin_token_rotation;
};

struct Recipient
{
  std::string name;
  std::string path; // expanded path of the public key file
  Mark mark;
};

enum class SinkType
{
  file,
  exec,
  http
};

struct Header
{
  std::string name;
  // May hold a secret read through ${file:}: never logged, never in an error; kept in
  // wiped memory (util::SecretText: config may not use crypto, DESIGN §9).
  util::SecretText value;
};

struct Sink
{
  SinkType type = SinkType::file;
  std::vector<std::string> recipients;
  Seconds timeout{ 30 };
  // file
  std::string path;
  std::optional<mode_t> mode; // default 0600
  std::string group;
  // exec
  std::vector<std::string> command;
  // http
  std::string url;         // expanded: may hold a secret from ${file:}; only for connecting
  std::string url_display; // as written, ${…} unexpanded: for every message, log and the state
  std::string method = "PUT";
  std::vector<Header> headers;
  std::string ca_file;
  bool insecure_http = false;
  Mark mark;
};

enum class PrunePolicy
{
  managed,
  all
};

// The keys that `defaults:` sets and each user may override.
struct Policy
{
  std::string schedule = "every 7d";
  std::string timezone = "UTC";
  Seconds jitter{ 30 * 60 };
  Seconds lifetime{ 30 * 86400 };
  Seconds grace{ 86400 };
  Seconds failure_budget{ 2 * 86400 };
  PrunePolicy prune = PrunePolicy::managed;
  std::string token_prefix = "rotator-";
  // `schedule` and `timezone` parsed once by config::load (users that write the same text
  // share one Schedule). Set in every Policy of a loaded Config (defaults and each user);
  // null / nullopt only in a Policy built by hand.
  std::shared_ptr<const schedule::Schedule> parsed_schedule;
  std::optional<schedule::Zone> zone;
};

struct AdminTokenRotation
{
  // schedule, timezone, jitter, lifetime, grace, failure_budget and token_prefix as for
  // users (prune unused); parsed_schedule and zone filled by check_schedules.
  Policy policy;
  AdminTokenStore store = AdminTokenStore::state;
  Mark mark;
  Mark schedule_mark;
  Mark timezone_mark;
  Mark lifetime_mark;
};

// The defaults of admin_token_rotation: monthly, one hour of grace, a Jenkins expiry after
// 40 days (longest gap 30d + grace + failure_budget 2d fits), names "rotator-admin-…".
AdminTokenRotation default_admin_token_rotation();

struct User
{
  std::string user;
  std::string controller;
  Policy policy;
  std::vector<Sink> sinks;
  Mark mark;
  Mark schedule_mark; // where the effective schedule was written (user or defaults)
  Mark timezone_mark;
  Mark lifetime_mark;
  // auth: self only: the file holding the user's first token (expanded path; empty: none).
  // Read until the slot's first commit; afterwards the daemon keeps its own (sealed).
  std::string bootstrap_token_file;
  Mark bootstrap_mark;
  // How this slot is rotated: the user's own `auth:` or else its controller's. A user of an
  // admin controller may say `auth: self` (REST as itself); the reverse is refused at load.
  Auth auth = Auth::admin;

  // "controller/user": the slot's name in output and on the control socket.
  [[nodiscard]] std::string slot() const { return controller + "/" + user; }
};

struct Config
{
  std::string path; // the file this was loaded from
  std::string state_dir = "/var/lib/jenkins-token-rotator";
  std::string control_socket = "/run/jenkins-token-rotator/control.sock";
  std::string control_group;
  std::string metrics_listen; // empty: no metrics endpoint
  std::string log_level = "info";
  std::string log_format = "text";
  // Ed25519 private key that signs envelopes (expanded path; empty: none). Checked as a
  // trusted secret file; read by crypto when signing.
  std::string signing_key;
  Mark signing_key_mark;
  // The daemon's X25519 key that what auth: self keeps is sealed to (expanded path; empty:
  // $CREDENTIALS_DIRECTORY/state_key when it exists, else state_dir/state_key, made on first
  // use: crypto::state_key_path).
  std::string state_key;
  Mark state_key_mark;
  Seconds prune_interval{ 15 * 60 };
  Seconds catch_up_spread{ 10 * 60 };
  Seconds audit_retention{ 90 * 86400 };
  Retry retry;
  std::vector<Controller> controllers;
  std::vector<Recipient> recipients;
  Policy defaults;
  std::vector<User> users;
  // `notify:` targets (exec or http; recipients unused): the events of docs/notifications.md.
  std::vector<Sink> notify;

  [[nodiscard]] const Controller* find_controller(const std::string& name) const;
  [[nodiscard]] const Recipient* find_recipient(const std::string& name) const;
};

const char* to_string(SinkType type);
const char* to_string(PrunePolicy policy);
const char* to_string(Auth auth);
const char* to_string(AdminTokenStore store);

// Jenkins compares user ids case-insensitively (IdStrategy.CASE_INSENSITIVE).
std::string fold_user_id(std::string_view id);

// The key of a slot in the daemon's maps: the controller, a newline, the folded user id.
std::string slot_key(std::string_view controller, std::string_view user);

} // namespace config
