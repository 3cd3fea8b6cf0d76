#include "config/loader.hpp"

#include "config/diagnostics.hpp"
#include "config/expand.hpp"
#include "config/file_checks.hpp"
#include "config/reader.hpp"
#include "config/schedule_rules.hpp"
#include "config/values.hpp"
#include "config/yaml_tree.hpp"
#include "util/duration.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <malloc.h>
#include <map>
#include <set>
#include <span>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

// The meaning of each key: one key table per section (name, type, reader), read by
// Reader::section() (reader.hpp), then the checks that span several keys.
namespace config {

namespace {

// A config is a few KB per hundred users; 64 MiB is far beyond any real one and keeps
// a mistaken path (a log file, /dev/zero) from eating memory.
constexpr std::size_t k_max_socket_path = 107; // sun_path is 108 bytes with the NUL

// What one load carries from key to key.
struct Load
{
  Load(std::string file, Diagnostics& diag, Config& config)
    : r(std::move(file), diag)
    , c(config)
  {
  }

  Reader r;
  Config& c;
  // Every recipient name written, valid or not: a broken key file is reported once
  // at its own line, not again at every sink that names it.
  std::set<std::string> declared_recipients;
  Mark defaults_mark;
  Mark timezone_mark;
  Mark lifetime_mark;
  // Users come last: they refer to controllers, recipients and defaults.
  YamlNode users;
  // normalised controller URL -> (name, line)
  std::map<std::string, std::pair<std::string, int>> controller_urls;
  // normalised file sink path -> (key path, line)
  std::map<std::string, std::pair<std::string, int>> file_sink_paths;
};

template<typename Target>
using KeyOf = Key<Load, Target>;

template<typename T, std::size_t N, std::size_t M>
constexpr std::array<T, N + M>
concat(const std::array<T, N>& a, const std::array<T, M>& b)
{
  std::array<T, N + M> out{};
  std::copy(a.begin(), a.end(), out.begin());
  std::copy(b.begin(), b.end(), out.begin() + N);
  return out;
}

// A key whose value was already read (a sink's type).
template<typename Target>
void
read_nothing(Load&, Target&, const YamlNode&, const KeyPath&)
{
}

// Checks an http(s) URL: https anywhere, http only for loopback hosts or with
// insecure_http. Returns the normalised form for duplicate detection.
std::optional<std::string>
check_url(Load& l, const YamlNode& v, const KeyPath& p, const std::string& url, bool insecure_http)
{
  const auto parsed = parse_url(url);
  if (!parsed) {
    l.r.error(v, p,
              "expected an http(s) URL such as https://jenkins.example.com/, found " + describe(v));
    return std::nullopt;
  }
  if (parsed->scheme == "http" && !insecure_http && !is_loopback_host(parsed->host)) {
    l.r.error(v, p,
              "expected https (http only for loopback hosts or with insecure_http: true), found " +
                describe(v));
    return std::nullopt;
  }
  return parsed->normalised;
}

// A CA bundle: any readable file.
std::optional<std::string>
read_ca_file(Load& l, const YamlNode& v, const KeyPath& p)
{
  auto f = l.r.path(v, p);
  if (!f) {
    return std::nullopt;
  }
  if (auto r = check_readable(*f); !r) {
    l.r.error(v, p, r.error().message);
    return std::nullopt;
  }
  return f;
}

// ---- control: -------------------------------------------------------------------

void
control_socket(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  if (auto s = l.r.path(v, p)) {
    if (s->size() > k_max_socket_path) {
      l.r.error(v, p,
                fmt::format("expected a socket path of at most {} bytes, found {} bytes",
                            k_max_socket_path, s->size()));
    } else {
      c.control_socket = *s;
    }
  }
}

constexpr std::array<KeyOf<Config>, 2> k_control_keys = { {
  { "socket", ValueType::path, &control_socket },
  { "group", ValueType::string, &read_string<&Config::control_group> },
} };

// ---- metrics: -------------------------------------------------------------------

void
metrics_listen(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  auto s = l.r.string(v, p);
  if (!s) {
    return;
  }
  const auto colon = s->rfind(':');
  const std::string port = colon == std::string::npos ? "" : s->substr(colon + 1);
  const bool port_ok =
    !port.empty() && port.size() <= 5 &&
    std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
    std::stoi(port) > 0 && std::stoi(port) < 65536;
  if (colon == 0 || colon == std::string::npos || !port_ok) {
    l.r.error(v, p, "expected HOST:PORT such as 127.0.0.1:9817, found " + describe(v));
    return;
  }
  c.metrics_listen = *s;
}

constexpr std::array<KeyOf<Config>, 1> k_metrics_keys = { {
  { "listen", ValueType::string, &metrics_listen },
} };

// ---- log: -----------------------------------------------------------------------

void
log_level(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  if (auto s = l.r.choice(v, p, { "debug", "info", "warning", "error" })) {
    c.log_level = *s;
  }
}

void
log_format(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  if (auto s = l.r.choice(v, p, { "text", "json" })) {
    c.log_format = *s;
  }
}

constexpr std::array<KeyOf<Config>, 2> k_log_keys = { {
  { "level", ValueType::choice, &log_level },
  { "format", ValueType::choice, &log_format },
} };

// ---- retry: ---------------------------------------------------------------------

constexpr std::array<KeyOf<Retry>, 3> k_retry_keys = { {
  { "attempts", ValueType::integer, &read_integer<&Retry::attempts, 1, 100> },
  { "initial", ValueType::duration, &read_duration<&Retry::initial> },
  { "max", ValueType::duration, &read_duration<&Retry::max> },
} };

// ---- controllers: ---------------------------------------------------------------

struct ControllerDraft : Controller
{
  YamlNode url_node;
  YamlNode auth_node;
  YamlNode rotation_node;
  YamlNode rotation_store_node;
  std::optional<AdminTokenRotation> rotation;
};

// admin_token_rotation: (after the policy keys it shares with users, below).
void controller_admin_rotation(Load& l, ControllerDraft& ctl, const YamlNode& v, const KeyPath& p);
void check_admin_rotation(Load& l, ControllerDraft& ctl, const YamlNode& item, const KeyPath& base);

void
controller_name(Load& l, ControllerDraft& ctl, const YamlNode& v, const KeyPath& p)
{
  if (auto s = l.r.string(v, p)) {
    if (!is_name(*s, 64)) {
      l.r.error(v, p,
                "expected a name of letters, digits, '.', '_' or '-' (at most 64), found " +
                  describe(v));
    } else if (l.c.find_controller(*s) != nullptr) {
      l.r.error(v, p, "expected a unique controller name, found " + describe(v) + " again");
    } else {
      ctl.name = *s;
    }
  }
}

void
controller_url(Load& l, ControllerDraft& ctl, const YamlNode& v, const KeyPath& p)
{
  ctl.url_node = v;
  if (auto s = l.r.expanded(v, p)) {
    ctl.url = std::move(*s);
  }
}

// A path to a secret file (a key, a token): one nobody else may read, change or swap
// (check_secret_file, check_trusted). nullopt, with the error reported at `v`, if not.
std::optional<std::string>
secret_file_path(Load& l, const YamlNode& v, const KeyPath& p)
{
  auto f = l.r.path(v, p);
  if (!f) {
    return std::nullopt;
  }
  if (auto r = check_secret_file(*f); !r) {
    l.r.error(v, p, fmt::format("{}: {}", *f, r.error().message));
    return std::nullopt;
  }
  if (auto t = check_trusted(*f); !t) {
    l.r.error(v, p, t.error().message);
    return std::nullopt;
  }
  return f;
}

void
controller_admin_token_file(Load& l, ControllerDraft& ctl, const YamlNode& v, const KeyPath& p)
{
  // The token itself is read (into SecretBytes) when connecting: here only its file.
  if (auto f = secret_file_path(l, v, p)) {
    ctl.admin_token_file = *f;
  }
}

void
controller_auth(Load& l, ControllerDraft& ctl, const YamlNode& v, const KeyPath& p)
{
  ctl.auth_node = v;
  if (auto s = l.r.choice(v, p, { "admin", "self" })) {
    ctl.auth = *s == "self" ? Auth::self : Auth::admin;
  }
}

void
controller_ca_file(Load& l, ControllerDraft& ctl, const YamlNode& v, const KeyPath& p)
{
  if (auto f = read_ca_file(l, v, p)) {
    ctl.ca_file = std::move(*f);
  }
}

constexpr std::array<KeyOf<ControllerDraft>, 12> k_controller_keys = { {
  { "name", ValueType::string, &controller_name },
  { "url", ValueType::expanded, &controller_url },
  { "admin_user", ValueType::string, &read_string<&Controller::admin_user> },
  { "admin_token_file", ValueType::path, &controller_admin_token_file },
  { "ca_file", ValueType::path, &controller_ca_file },
  { "timeout", ValueType::duration, &read_duration<&Controller::timeout> },
  { "max_concurrent", ValueType::integer, &read_integer<&Controller::max_concurrent, 1, 64> },
  { "verify_concurrent", ValueType::integer, &read_integer<&Controller::verify_concurrent, 1, 64> },
  { "batch_size", ValueType::integer, &read_integer<&Controller::batch_size, 1, 500> },
  { "insecure_http", ValueType::boolean, &read_boolean<&Controller::insecure_http> },
  { "auth", ValueType::choice, &controller_auth },
  { "admin_token_rotation", ValueType::section, &controller_admin_rotation },
} };

void
controller(Load& l, std::size_t i, const YamlNode& item, const KeyPath& list)
{
  const KeyPath base = list.at(i);
  ControllerDraft ctl;
  ctl.mark = l.r.mark(item);
  if (!l.r.section(item, base, std::span(k_controller_keys), l, ctl)) {
    return;
  }
  for (const auto* required : { "name", "url" }) {
    if (!item[required]) {
      l.r.error(item, base, fmt::format("expected key {}, found none", required));
    }
  }
  for (const auto* admin_key : { "admin_user", "admin_token_file" }) {
    if (ctl.auth == Auth::admin && !item[admin_key]) {
      l.r.error(item, base,
                fmt::format("expected key {}, found none (or auth: self, which rotates over "
                            "REST with each user's own token)",
                            admin_key));
    } else if (ctl.auth == Auth::self && item[admin_key]) {
      // Least privilege (docs/self-rotation.md): a self controller holds no admin secret.
      l.r.error(item[admin_key], base.child(admin_key),
                fmt::format("expected no {} with auth: self (its users rotate their own tokens "
                            "over REST; no admin credential is configured or read), found one",
                            admin_key));
    }
  }
  check_admin_rotation(l, ctl, item, base);
  if (!ctl.url.empty()) {
    if (auto norm = check_url(l, ctl.url_node, base.child("url"), ctl.url, ctl.insecure_http)) {
      const auto [it, inserted] =
        l.controller_urls.emplace(*norm, std::pair(ctl.name, l.r.mark(ctl.url_node).line));
      if (!inserted) {
        l.r.error(ctl.url_node, base.child("url"),
                  fmt::format("expected a URL no other controller uses, found the URL of "
                              "controller \"{}\" (line {})",
                              it->second.first, it->second.second));
      }
      if (ctl.url.back() != '/') {
        ctl.url += '/';
      }
    }
  }
  if (!ctl.name.empty()) {
    l.c.controllers.push_back(static_cast<Controller&&>(ctl));
  }
}

void
controllers(Load& l, Config&, const YamlNode& node, const KeyPath& list)
{
  l.r.sequence(node, list,
               [&](std::size_t i, const YamlNode& item) { controller(l, i, item, list); });
  if (node.is_sequence() && node.size() == 0) {
    l.r.error(node, list, "expected at least one controller, found none");
  }
}

// ---- recipients: ----------------------------------------------------------------

// Recipients are a mapping name → key file: every key is a user-chosen name, so they
// have no key table. Walked before everything else: sinks refer to them wherever
// they are written in the file.
void
recipients(Load& l, const YamlNode& node)
{
  l.r.visit();
  if (!node.is_map()) {
    l.r.error(node, "recipients",
              "expected a mapping of name: public key file, found " + describe(node));
    return;
  }
  const KeyPath recipients("recipients");
  for (const auto& kv : node.entries()) {
    l.r.visit();
    const std::string name(kv.first.scalar());
    const KeyPath p = recipients.child(name);
    if (!is_name(name, 64)) {
      l.r.error(kv.first, "recipients",
                "expected a name of letters, digits, '.', '_' or '-', found " + describe(kv.first));
      continue;
    }
    if (!l.declared_recipients.insert(name).second) {
      l.r.error(kv.first, p, "expected each recipient once, found it again");
      continue;
    }
    auto f = l.r.path(kv.second, p);
    if (!f) {
      continue;
    }
    if (auto r = check_readable(*f); !r) {
      l.r.error(kv.second, p, r.error().message);
      continue;
    }
    if (auto r = check_trusted(*f); !r) {
      l.r.error(kv.second, p, r.error().message);
      continue;
    }
    l.c.recipients.push_back(Recipient{ name, *f, l.r.mark(kv.second) });
  }
}

// ---- policy keys (defaults: and each user) -----------------------------------------

// Where a policy's values and the marks of the values that later checks name go.
struct PolicyTarget
{
  Policy& policy;
  Mark& schedule_mark;
  Mark& timezone_mark;
  Mark& lifetime_mark;
};

struct DefaultsDraft
{
  PolicyTarget target;
};

PolicyTarget
policy_target(DefaultsDraft& d)
{
  return d.target;
}

struct UserDraft : User
{
  YamlNode user_node;
  YamlNode controller_node;
  YamlNode bootstrap_node;
  YamlNode auth_node; // the user's own auth: (else its controller's)
  bool sinks_seen = false;
};

PolicyTarget
policy_target(UserDraft& u)
{
  return { u.policy, u.schedule_mark, u.timezone_mark, u.lifetime_mark };
}

template<typename T>
void
policy_schedule(Load& l, T& t, const YamlNode& v, const KeyPath& p)
{
  if (auto s = l.r.string(v, p)) {
    const auto target = policy_target(t);
    target.policy.schedule = *s;
    target.schedule_mark = l.r.mark(v);
  }
}

template<typename T>
void
policy_timezone(Load& l, T& t, const YamlNode& v, const KeyPath& p)
{
  if (auto s = l.r.string(v, p)) {
    const auto target = policy_target(t);
    target.policy.timezone = *s;
    target.timezone_mark = l.r.mark(v);
  }
}

template<auto Member, typename T>
void
policy_duration(Load& l, T& t, const YamlNode& v, const KeyPath& p)
{
  if (auto d = l.r.duration(v, p)) {
    policy_target(t).policy.*Member = *d;
  }
}

template<typename T>
void
policy_lifetime(Load& l, T& t, const YamlNode& v, const KeyPath& p)
{
  if (auto d = l.r.duration(v, p)) {
    const auto target = policy_target(t);
    target.policy.lifetime = *d;
    target.lifetime_mark = l.r.mark(v);
  }
}

template<typename T>
void
policy_prune(Load& l, T& t, const YamlNode& v, const KeyPath& p)
{
  if (auto s = l.r.choice(v, p, { "managed", "all" })) {
    policy_target(t).policy.prune = *s == "all" ? PrunePolicy::all : PrunePolicy::managed;
  }
}

template<typename T>
void
policy_token_prefix(Load& l, T& t, const YamlNode& v, const KeyPath& p)
{
  if (auto s = l.r.string(v, p)) {
    if (!is_name(*s, 24)) {
      l.r.error(v, p, "expected 1 to 24 of [A-Za-z0-9._-], found " + describe(v));
    } else {
      policy_target(t).policy.token_prefix = *s;
    }
  }
}

// Policy keys shared by `defaults:` and each user: one table, read by the same code.
template<typename T>
constexpr std::array<KeyOf<T>, 8> k_policy_keys = { {
  { "schedule", ValueType::string, &policy_schedule<T> },
  { "timezone", ValueType::string, &policy_timezone<T> },
  { "jitter", ValueType::duration, &policy_duration<&Policy::jitter, T> },
  { "lifetime", ValueType::duration, &policy_lifetime<T> },
  { "grace", ValueType::duration, &policy_duration<&Policy::grace, T> },
  { "failure_budget", ValueType::duration, &policy_duration<&Policy::failure_budget, T> },
  { "prune", ValueType::choice, &policy_prune<T> },
  { "token_prefix", ValueType::string, &policy_token_prefix<T> },
} };

// ---- admin_token_rotation: (docs/admin-token-rotation.md) ------------------------------

struct AdminRotationDraft
{
  ControllerDraft& ctl;
  AdminTokenRotation& a;
};

PolicyTarget
policy_target(AdminRotationDraft& d)
{
  return { d.a.policy, d.a.schedule_mark, d.a.timezone_mark, d.a.lifetime_mark };
}

void
admin_rotation_store(Load& l, AdminRotationDraft& d, const YamlNode& v, const KeyPath& p)
{
  d.ctl.rotation_store_node = v;
  if (auto s = l.r.choice(v, p, { "state", "file" })) {
    d.a.store = *s == "file" ? AdminTokenStore::file : AdminTokenStore::state;
  }
}

// The schedule keys users have (prune aside: the admin user's other tokens are not ours to
// judge), and where the new token is kept.
constexpr std::array<KeyOf<AdminRotationDraft>, 8> k_admin_rotation_keys = { {
  { "schedule", ValueType::string, &policy_schedule<AdminRotationDraft> },
  { "timezone", ValueType::string, &policy_timezone<AdminRotationDraft> },
  { "jitter", ValueType::duration, &policy_duration<&Policy::jitter, AdminRotationDraft> },
  { "lifetime", ValueType::duration, &policy_lifetime<AdminRotationDraft> },
  { "grace", ValueType::duration, &policy_duration<&Policy::grace, AdminRotationDraft> },
  { "failure_budget", ValueType::duration,
    &policy_duration<&Policy::failure_budget, AdminRotationDraft> },
  { "token_prefix", ValueType::string, &policy_token_prefix<AdminRotationDraft> },
  { "store", ValueType::choice, &admin_rotation_store },
} };

void
controller_admin_rotation(Load& l, ControllerDraft& ctl, const YamlNode& v, const KeyPath& p)
{
  ctl.rotation_node = v;
  auto a = default_admin_token_rotation();
  a.mark = l.r.mark(v);
  a.schedule_mark = a.mark;
  a.timezone_mark = a.mark;
  a.lifetime_mark = a.mark;
  AdminRotationDraft d{ ctl, a };
  if (l.r.section(v, p, std::span(k_admin_rotation_keys), l, d)) {
    ctl.rotation = std::move(a);
  }
}

// store: file rewrites admin_token_file in place (a new file renamed over it): the daemon
// must be able to write the file and its directory, and the file must be the daemon's
// own 0600 secret, or the switch would fail after the mint (or widen who can read it).
std::optional<std::string>
file_store_problem(const std::string& file)
{
  struct stat st
  {};
  if (::stat(file.c_str(), &st) != 0) {
    return fmt::format("{}: {}", file, std::strerror(errno));
  }
  if ((st.st_mode & 07777) != 0600) {
    return fmt::format("expected admin_token_file {} to be mode 0600 (store: file keeps the "
                       "mode), found {:04o}",
                       file, st.st_mode & 07777);
  }
  if (st.st_uid != ::geteuid()) {
    return fmt::format("expected admin_token_file {} to be owned by the daemon's user (uid {}) "
                       "so it can be replaced, found uid {}",
                       file, ::geteuid(), st.st_uid);
  }
  if (::access(file.c_str(), W_OK) != 0) {
    return fmt::format("expected admin_token_file {} writable by the daemon, found it is not "
                       "({})",
                       file, std::strerror(errno));
  }
  const auto dir = std::filesystem::path(file).parent_path().string();
  if (::access(dir.empty() ? "." : dir.c_str(), W_OK) != 0) {
    return fmt::format("expected the directory {} of admin_token_file writable by the daemon "
                       "(the new token is renamed into place), found it is not ({})",
                       dir, std::strerror(errno));
  }
  return std::nullopt;
}

void
check_admin_rotation(Load& l, ControllerDraft& ctl, const YamlNode& item, const KeyPath& base)
{
  if (!ctl.rotation) {
    return;
  }
  const KeyPath p = base.child("admin_token_rotation");
  if (ctl.auth == Auth::self) {
    l.r.error(ctl.rotation_node, p,
              "expected no admin_token_rotation with auth: self (it holds no admin token), "
              "found one");
    return;
  }
  if (ctl.rotation->store == AdminTokenStore::file && item["admin_token_file"] &&
      !ctl.admin_token_file.empty()) {
    if (auto problem = file_store_problem(ctl.admin_token_file)) {
      l.r.error(ctl.rotation_store_node, p.child("store"), "store: file: " + *problem);
      return;
    }
  }
  ctl.admin_token_rotation = std::make_shared<const AdminTokenRotation>(std::move(*ctl.rotation));
}

// ---- sinks ------------------------------------------------------------------------

struct SinkDraft : Sink
{
  YamlNode url_node;
  YamlNode path_node;
};

void
sink_path(Load& l, SinkDraft& s, const YamlNode& v, const KeyPath& p)
{
  s.path_node = v;
  if (auto f = l.r.path(v, p)) {
    s.path = std::move(*f);
  }
}

void
sink_recipients(Load& l, SinkDraft& s, const YamlNode& v, const KeyPath& p)
{
  const bool ok = l.r.sequence(v, p, [&](std::size_t j, const YamlNode& r) {
    const KeyPath rp = p.at(j);
    auto name = l.r.string(r, rp);
    if (!name) {
      return;
    }
    if (l.declared_recipients.count(*name) == 0) {
      std::vector<std::string> names(l.declared_recipients.begin(), l.declared_recipients.end());
      l.r.error(r, rp,
                fmt::format("expected a recipient name ({}), found {}",
                            names.empty() ? "none are defined" : join(names), describe(r)));
      return;
    }
    if (std::find(s.recipients.begin(), s.recipients.end(), *name) != s.recipients.end()) {
      l.r.error(r, rp, "expected each recipient once, found " + describe(r) + " again");
      return;
    }
    s.recipients.push_back(*name);
  });
  if (ok && v.size() == 0) {
    l.r.error(v, p, "expected at least one recipient, found none");
  }
}

void
sink_mode(Load& l, SinkDraft& s, const YamlNode& v, const KeyPath& p)
{
  l.r.visit();
  const std::string text(v.scalar());
  // The tree keeps the scalar's text, so 0640 and "0640" both arrive as "0640";
  // the leading zero is required so that 640 is not mistaken for octal.
  const bool ok =
    text.size() == 4 && text[0] == '0' &&
    std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '7'; });
  if (!ok) {
    l.r.error(v, p, "expected an octal mode such as \"0640\", found " + describe(v));
    return;
  }
  const auto m = static_cast<mode_t>(std::stoi(text, nullptr, 8));
  if ((m & 0002) != 0) {
    l.r.error(v, p, "expected a mode that others cannot write, found " + describe(v));
    return;
  }
  s.mode = m;
}

void
sink_command(Load& l, SinkDraft& s, const YamlNode& v, const KeyPath& p)
{
  const bool ok = l.r.sequence(v, p, [&](std::size_t j, const YamlNode& arg) {
    const KeyPath ap = p.at(j);
    if (arg.is_scalar() && uses_file(arg.scalar())) {
      l.r.visit();
      l.r.error(arg, ap,
                "expected no ${file:} in a command (every user can read a process's arguments "
                "in /proc/PID/cmdline), found one: pass the secret through the environment or "
                "stdin");
      return;
    }
    if (j == 0) {
      auto exe = l.r.path(arg, ap);
      if (!exe) {
        return;
      }
      struct stat st
      {};
      if (::stat(exe->c_str(), &st) != 0) {
        l.r.error(arg, ap, fmt::format("{}: {}", *exe, std::strerror(errno)));
        return;
      }
      if (!S_ISREG(st.st_mode) || ::access(exe->c_str(), X_OK) != 0) {
        l.r.error(arg, ap, fmt::format("expected an executable file, found {}", *exe));
        return;
      }
      if (auto r = check_trusted(*exe); !r) {
        l.r.error(arg, ap, r.error().message);
        return;
      }
      s.command.push_back(*exe);
    } else {
      l.r.visit();
      if (!arg.is_scalar()) {
        l.r.error(arg, ap, "expected a string, found " + describe(arg));
        return;
      }
      auto value = l.r.expand(arg.scalar());
      if (!value) {
        l.r.error(arg, ap, value.error().message);
        return;
      }
      s.command.push_back(std::move(*value));
    }
  });
  if (ok && v.size() == 0) {
    l.r.error(v, p, "expected a command with at least the program, found an empty list");
  }
}

void
sink_url(Load& l, SinkDraft& s, const YamlNode& v, const KeyPath& p)
{
  s.url_node = v;
  if (auto u = l.r.expanded(v, p)) {
    s.url = std::move(*u);
    s.url_display = std::string(v.scalar());
  }
}

void
sink_method(Load& l, SinkDraft& s, const YamlNode& v, const KeyPath& p)
{
  if (auto m = l.r.choice(v, p, { "POST", "PUT" })) {
    s.method = *m;
  }
}

void
sink_ca_file(Load& l, SinkDraft& s, const YamlNode& v, const KeyPath& p)
{
  if (auto f = read_ca_file(l, v, p)) {
    s.ca_file = std::move(*f);
  }
}

void
sink_headers(Load& l, SinkDraft& s, const YamlNode& v, const KeyPath& p)
{
  l.r.visit();
  if (!v.is_map()) {
    l.r.error(v, p, "expected a mapping of header: value, found " + describe(v));
    return;
  }
  for (const auto& kv : v.entries()) {
    l.r.visit();
    const std::string name(kv.first.scalar());
    if (!is_header_name(name)) {
      l.r.error(kv.first, p, "expected a header name, found " + describe(kv.first));
      continue;
    }
    if (is_reserved_header(name)) {
      // The sink frames the request and sets Idempotency-Key to the token uuid itself.
      l.r.error(kv.first, p,
                "expected a header the sink does not set itself, found \"" + name + "\"");
      continue;
    }
    const KeyPath hp = p.child(kv.first.scalar());
    auto value = l.r.expanded_secret(kv.second, hp);
    if (!value) {
      continue;
    }
    // Do not describe the value: it may come from a ${file:} secret.
    const auto text = value->view();
    if (text.find_first_of("\r\n") != std::string_view::npos) {
      l.r.error(kv.second, hp, "expected a header value on one line, found a line break");
      continue;
    }
    const auto bad = std::find_if(text.begin(), text.end(), [](char ch) {
      const auto c = static_cast<unsigned char>(ch);
      return (c < 0x20 && c != '\t') || c == 0x7f;
    });
    if (bad != text.end()) {
      l.r.error(kv.second, hp,
                fmt::format("expected a header value without control characters, found byte "
                            "0x{:02x}",
                            static_cast<unsigned char>(*bad)));
      continue;
    }
    s.headers.push_back(Header{ name, std::move(*value) });
  }
}

constexpr std::array<KeyOf<SinkDraft>, 5> k_file_sink_keys = { {
  { "type", ValueType::choice, &read_nothing<SinkDraft> },
  { "recipients", ValueType::list, &sink_recipients },
  { "path", ValueType::path, &sink_path },
  { "mode", ValueType::string, &sink_mode },
  { "group", ValueType::string, &read_string<&Sink::group> },
} };

constexpr std::array<KeyOf<SinkDraft>, 4> k_exec_sink_keys = { {
  { "type", ValueType::choice, &read_nothing<SinkDraft> },
  { "recipients", ValueType::list, &sink_recipients },
  { "command", ValueType::list, &sink_command },
  { "timeout", ValueType::duration, &read_duration<&Sink::timeout> },
} };

constexpr std::array<KeyOf<SinkDraft>, 8> k_http_sink_keys = { {
  { "type", ValueType::choice, &read_nothing<SinkDraft> },
  { "recipients", ValueType::list, &sink_recipients },
  { "url", ValueType::expanded, &sink_url },
  { "method", ValueType::choice, &sink_method },
  { "timeout", ValueType::duration, &read_duration<&Sink::timeout> },
  { "ca_file", ValueType::path, &sink_ca_file },
  { "headers", ValueType::mapping, &sink_headers },
  { "insecure_http", ValueType::boolean, &read_boolean<&Sink::insecure_http> },
} };

struct SinkKind
{
  std::string_view name;
  SinkType type;
  std::span<const KeyOf<SinkDraft>> keys;
  const char* required; // the key that says what the sink does
};

constexpr std::array<SinkKind, 3> k_sink_kinds = { {
  { "file", SinkType::file, k_file_sink_keys, "path" },
  { "exec", SinkType::exec, k_exec_sink_keys, "command" },
  { "http", SinkType::http, k_http_sink_keys, "url" },
} };

// One of a user's sinks, or with `notify` one notify: target (exec or http, no recipients).
void
sink(Load& l, std::vector<Sink>& out, std::size_t i, const YamlNode& item, const KeyPath& base,
     bool notify = false)
{
  const KeyPath sp = base.at(i);
  l.r.visit();
  if (!item.is_map()) {
    l.r.error(item, sp, "expected a mapping, found " + describe(item));
    return;
  }
  const YamlNode type_node = item["type"];
  if (!type_node) {
    l.r.error(item, sp,
              notify ? "expected key type (exec | http), found none"
                     : "expected key type (file | exec | http), found none");
    return;
  }
  const auto type = notify ? l.r.choice(type_node, sp.child("type"), { "exec", "http" })
                           : l.r.choice(type_node, sp.child("type"), { "file", "exec", "http" });
  if (!type) {
    return;
  }
  const auto& kind = *std::find_if(k_sink_kinds.begin(), k_sink_kinds.end(),
                                   [&](const SinkKind& k) { return k.name == *type; });
  SinkDraft s;
  s.type = kind.type;
  s.mark = l.r.mark(item);
  if (!l.r.section(item, sp, kind.keys, l, s)) {
    return;
  }
  if (!item[kind.required]) {
    l.r.error(item, sp, fmt::format("expected key {}, found none", kind.required));
  }
  if (s.type == SinkType::http && !s.url.empty()) {
    check_url(l, s.url_node, sp.child("url"), s.url, s.insecure_http);
  }
  if (s.type == SinkType::file && !s.path.empty()) {
    // Two sinks replacing one file would each overwrite the other's token.
    const auto normal = std::filesystem::path(s.path).lexically_normal().string();
    const auto [it, inserted] =
      l.file_sink_paths.emplace(normal, std::pair(sp.str(), l.r.mark(s.path_node).line));
    if (!inserted) {
      l.r.error(s.path_node, sp.child("path"),
                fmt::format("expected a path no other sink writes, found the path of {} (line {})",
                            it->second.first, it->second.second));
    }
  }
  if (notify && item["recipients"]) {
    l.r.error(item["recipients"], sp.child("recipients"),
              "expected no recipients: a notification is no envelope");
  } else if (!notify && !item["recipients"]) {
    l.r.error(item, sp, "expected key recipients, found none");
  }
  out.push_back(static_cast<Sink&&>(s));
}

// ---- users: ---------------------------------------------------------------------

void
user_user(Load& l, UserDraft& u, const YamlNode& v, const KeyPath& p)
{
  u.user_node = v;
  auto s = l.r.string(v, p);
  if (!s) {
    return;
  }
  // Verification logs in as the user with Basic auth ("user:token"): a ':' would split
  // it elsewhere, and control characters end up in headers and logs.
  const bool bad = std::any_of(s->begin(), s->end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return ch == ':' || c < 0x20 || c == 0x7f;
  });
  if (bad) {
    l.r.error(v, p,
              "expected a user id without ':' or control characters (verification logs in "
              "with Basic auth), found " +
                describe(v));
    return;
  }
  u.user = std::move(*s);
}

void
user_controller(Load& l, UserDraft& u, const YamlNode& v, const KeyPath& p)
{
  u.controller_node = v;
  if (auto s = l.r.string(v, p)) {
    u.controller = std::move(*s);
  }
}

void
user_sinks(Load& l, UserDraft& u, const YamlNode& node, const KeyPath& base)
{
  u.sinks_seen = true;
  const bool ok = l.r.sequence(
    node, base, [&](std::size_t i, const YamlNode& item) { sink(l, u.sinks, i, item, base); });
  if (ok && node.size() == 0) {
    l.r.error(node, base, "expected at least one sink, found none");
  }
}

void
user_bootstrap_token_file(Load& l, UserDraft& u, const YamlNode& v, const KeyPath& p)
{
  u.bootstrap_node = v;
  // Checked like the admin token file (a secret, a trusted file); read when first needed.
  if (auto f = secret_file_path(l, v, p)) {
    u.bootstrap_token_file = *f;
    u.bootstrap_mark = l.r.mark(v);
  }
}

void
user_auth(Load& l, UserDraft& u, const YamlNode& v, const KeyPath& p)
{
  u.auth_node = v;
  if (auto s = l.r.choice(v, p, { "admin", "self" })) {
    u.auth = *s == "self" ? Auth::self : Auth::admin;
  }
}

constexpr auto k_user_keys =
  concat(std::array<KeyOf<UserDraft>, 5>{ {
           { "auth", ValueType::choice, &user_auth },
           { "bootstrap_token_file", ValueType::path, &user_bootstrap_token_file },
           { "user", ValueType::string, &user_user },
           { "controller", ValueType::string, &user_controller },
           { "sinks", ValueType::list, &user_sinks },
         } },
         k_policy_keys<UserDraft>);

// The effective auth of a user (its own, else its controller's) and the keys it asks for
// (docs/self-rotation.md).
void
user_auth_rules(Load& l, UserDraft& u, const Controller& ctl, const YamlNode& item,
                const KeyPath& base)
{
  if (!u.auth_node) {
    u.auth = ctl.auth;
  } else if (ctl.auth == Auth::self && u.auth == Auth::admin) {
    l.r.error(u.auth_node, base.child("auth"),
              fmt::format("expected auth: self (or none) for a user of controller \"{}\", found "
                          "auth: admin: the controller has auth: self, so no admin credential "
                          "is configured to run the script console with",
                          ctl.name));
    u.auth = Auth::self;
  }
  if (u.auth == Auth::self && u.policy.prune != PrunePolicy::all) {
    // A lost REST mint may leave a token whose uuid we never learn (REST lists no
    // tokens); only revokeAllExcept(current) can remove it, and that takes every other
    // token of the user too: the user must be the rotator's alone.
    l.r.error(item, base.child("prune"),
              fmt::format("expected prune: all for a user {} (auth: self): Jenkins' REST API "
                          "cannot list tokens, so a lost mint is removed with revokeAllExcept, "
                          "which needs the user dedicated to the rotator; found prune: {}",
                          u.auth_node ? std::string("with auth: self")
                                      : fmt::format("of controller \"{}\"", ctl.name),
                          to_string(u.policy.prune)));
  }
  if (u.auth != Auth::self && u.bootstrap_node) {
    l.r.error(u.bootstrap_node, base.child("bootstrap_token_file"),
              fmt::format("expected no bootstrap_token_file for a user of controller \"{}\" "
                          "(auth: admin mints through the script console; a user rotates "
                          "itself with auth: self), found one",
                          ctl.name));
  }
}

void
users(Load& l, const YamlNode& node)
{
  Config& c = l.c;
  // (controller, folded user) -> line of its first appearance
  std::map<std::pair<std::string, std::string>, int> seen;
  const KeyPath list("users");
  l.r.sequence(node, list, [&](std::size_t i, const YamlNode& item) {
    const KeyPath base = list.at(i);
    UserDraft u;
    u.policy = c.defaults;
    u.mark = l.r.mark(item);
    u.schedule_mark = l.defaults_mark;
    u.timezone_mark = l.timezone_mark;
    u.lifetime_mark = l.lifetime_mark;
    if (!l.r.section(item, base, std::span(k_user_keys), l, u)) {
      return;
    }
    if (!item["user"]) {
      l.r.error(item, base, "expected key user, found none");
    }
    if (!item["controller"]) {
      l.r.error(item, base, "expected key controller, found none");
    }
    if (!u.sinks_seen) {
      l.r.error(item, base.child("sinks"), "expected at least one sink, found none");
    }
    const Controller* ctl = nullptr;
    if (!u.controller.empty()) {
      ctl = c.find_controller(u.controller);
      if (ctl == nullptr) {
        std::vector<std::string> names;
        for (const auto& x : c.controllers) {
          names.push_back(x.name);
        }
        l.r.error(u.controller_node, base.child("controller"),
                  fmt::format("expected a controller name ({}), found {}",
                              names.empty() ? "none are defined" : join(names),
                              describe(u.controller_node)));
      }
    }
    if (ctl != nullptr) {
      user_auth_rules(l, u, *ctl, item, base);
    }
    if (ctl != nullptr && !u.user.empty()) {
      if (ctl->auth == Auth::admin && fold_user_id(u.user) == fold_user_id(ctl->admin_user)) {
        l.r.error(u.user_node, base.child("user"),
                  fmt::format("expected a user other than controller \"{}\"'s admin_user, found {}",
                              ctl->name, describe(u.user_node)));
      }
      const auto [it, inserted] =
        seen.emplace(std::pair(ctl->name, fold_user_id(u.user)), l.r.mark(u.user_node).line);
      if (!inserted) {
        l.r.error(u.user_node, base.child("user"),
                  fmt::format("expected each user once per controller (Jenkins ignores case), "
                              "found {} again (first at line {})",
                              describe(u.user_node), it->second));
      }
    }
    if (!u.user.empty() && !u.controller.empty()) {
      c.users.push_back(static_cast<User&&>(u));
    }
  });
}

// ---- the root ---------------------------------------------------------------------

void
root_control(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  l.r.section(v, p, std::span(k_control_keys), l, c);
}

void
root_metrics(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  l.r.section(v, p, std::span(k_metrics_keys), l, c);
}

void
root_log(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  l.r.section(v, p, std::span(k_log_keys), l, c);
}

void
root_retry(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  if (l.r.section(v, p, std::span(k_retry_keys), l, c.retry) && c.retry.initial > c.retry.max) {
    l.r.error(v, p,
              fmt::format("expected initial ≤ max, found initial {} > max {}",
                          util::format_duration(c.retry.initial),
                          util::format_duration(c.retry.max)));
  }
}

void
root_defaults(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  l.defaults_mark = l.r.mark(v);
  DefaultsDraft d{ { c.defaults, l.defaults_mark, l.timezone_mark, l.lifetime_mark } };
  l.r.section(v, p, std::span(k_policy_keys<DefaultsDraft>), l, d);
}

void
root_users(Load& l, Config&, const YamlNode& v, const KeyPath&)
{
  l.users = v;
}

void
root_state_dir(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  if (auto d = l.r.path(v, p)) {
    // Whoever may enter it may read the sealed envelopes' metadata and the audit log,
    // and swap the database; the store creates it 0700 when it does not exist yet.
    if (auto r = check_state_dir(*d); !r) {
      l.r.error(v, p, fmt::format("{}: {}", *d, r.error().message));
      return;
    }
    c.state_dir = std::move(*d);
  }
}

void
root_signing_key(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  // Only the file is checked here (a secret nobody else may read, change or swap);
  // crypto reads and parses the key when it signs.
  if (auto f = secret_file_path(l, v, p)) {
    c.signing_key = std::move(*f);
    c.signing_key_mark = l.r.mark(v);
  }
}

void
root_state_key(Load& l, Config& c, const YamlNode& v, const KeyPath& p)
{
  // A key file the daemon reads (it must exist: a configured key is never made).
  if (auto f = secret_file_path(l, v, p)) {
    c.state_key = std::move(*f);
    c.state_key_mark = l.r.mark(v);
  }
}

// Notification targets are sinks without recipients (docs/notifications.md).
void
root_notify(Load& l, Config& c, const YamlNode& node, const KeyPath& base)
{
  l.r.sequence(node, base, [&](std::size_t i, const YamlNode& item) {
    sink(l, c.notify, i, item, base, true);
  });
}

constexpr std::array<KeyOf<Config>, 15> k_root_keys = { {
  { "state_dir", ValueType::path, &root_state_dir },
  { "control", ValueType::section, &root_control },
  { "metrics", ValueType::section, &root_metrics },
  { "log", ValueType::section, &root_log },
  { "prune_interval", ValueType::duration, &read_duration<&Config::prune_interval> },
  { "catch_up_spread", ValueType::duration, &read_duration<&Config::catch_up_spread> },
  { "audit_retention", ValueType::duration, &read_duration<&Config::audit_retention> },
  { "retry", ValueType::section, &root_retry },
  { "controllers", ValueType::list, &controllers },
  // Walked first by recipients(): sinks refer to them.
  { "recipients", ValueType::mapping, &read_nothing<Config> },
  { "defaults", ValueType::section, &root_defaults },
  { "users", ValueType::list, &root_users },
  { "signing_key", ValueType::path, &root_signing_key },
  { "state_key", ValueType::path, &root_state_key },
  { "notify", ValueType::list, &root_notify },
} };

// Fills `c` from the root node.
void
walk(Load& l, const YamlNode& root)
{
  Config& c = l.c;
  c.path = l.r.file();
  l.defaults_mark = Mark{ l.r.file(), 1, 1 };
  l.lifetime_mark = l.defaults_mark;
  l.timezone_mark = l.defaults_mark;
  // Recipients first: sinks refer to them wherever they are written in the file.
  if (root.is_map() && root["recipients"]) {
    recipients(l, root["recipients"]);
  }
  l.r.section(root, "", std::span(k_root_keys), l, c);
  if (l.users) {
    users(l, l.users);
  }
  if (root.is_map() && c.controllers.empty() && !root["controllers"]) {
    l.r.error(root, "controllers", "expected at least one controller, found none");
  }
}

util::Result<Config>
load_text(const std::string& text, const std::string& name)
{
  Diagnostics diag;
  if (auto bad = find_invalid_utf8(text)) {
    int line = 1;
    int col = 1;
    for (std::size_t i = 0; i < *bad; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    diag.add(Mark{ name, line, col }, "",
             fmt::format("expected UTF-8 text, found byte 0x{:02x}",
                         static_cast<unsigned char>(text[*bad])));
    return util::make_error("config", diag.to_string());
  }
  Config config;
  {
    auto tree = YamlTree::parse(text);
    if (!tree) {
      const auto& e = tree.error();
      diag.add(Mark{ name, e.mark.is_null() ? 1 : e.mark.line + 1,
                     e.mark.is_null() ? 1 : e.mark.column + 1 },
               "", fmt::format("expected valid YAML, found an error: {}", e.message));
      return util::make_error("config", diag.to_string());
    }
    std::vector<YamlNode> docs;
    for (std::size_t i = 0; i < tree->document_count(); ++i) {
      docs.push_back(tree->document(i));
    }
    if (docs.empty() || docs[0].is_null()) {
      diag.add(Mark{ name, 1, 1 }, "(root)", "expected a mapping, found an empty document");
      return util::make_error("config", diag.to_string());
    }
    if (docs.size() > 1) {
      diag.add(Mark{ name, docs[1].mark().line + 1, docs[1].mark().column + 1 }, "",
               "expected one YAML document, found several");
      return util::make_error("config", diag.to_string());
    }
    try {
      Load l(name, diag, config);
      walk(l, docs[0]);
    } catch (const TooManyNodes&) {
      Diagnostics only;
      only.add(Mark{ name, 1, 1 }, "(root)",
               "expected a config of reasonable size, found a document that expands past 2,000,000 "
               "nodes (anchors and aliases?)");
      return util::make_error("config", only.to_string());
    }
  }
  // The tree is gone, but the config built while walking it lies scattered among the
  // blocks freed with it and pins their pages (10,000 users: 31.4 MiB resident after load
  // without the copy below, 27.3 MiB with it; with yaml-cpp's tree it was 66 MB). A copy
  // made on a short-lived thread comes from a glibc arena of its own, in one piece; the
  // scattered original is freed and trimmed.
  std::thread([&config] { config = Config(config); }).join();
  ::malloc_trim(0);
  if (diag.empty()) {
    check_schedules(config, diag);
  }
  if (!diag.empty()) {
    return util::make_error("config", diag.to_string());
  }
  return config;
}

} // namespace

util::Result<Config>
load_from_string(const std::string& text, const std::string& name)
{
  return load_text(text, name);
}

util::Result<Config>
load(const std::string& path)
{
  Diagnostics diag;
  if (auto r = check_trusted(path); !r) {
    diag.add_file_error(path, r.error().message);
    return util::make_error("config", diag.to_string());
  }
  // Opened without blocking and refused unless a regular file: a FIFO would hang us,
  // a directory would read as an empty document.
  auto text = read_regular_file(path, k_max_config_file_bytes, "64 MiB");
  if (!text) {
    diag.add_file_error(path, text.error().kind == "size"
                                ? "expected a config of at most 64 MiB, found a larger file"
                                : text.error().message);
    return util::make_error("config", diag.to_string());
  }
  return load_text(*text, path);
}

} // namespace config
