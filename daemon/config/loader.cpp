#include "config/loader.hpp"

#include "config/diagnostics.hpp"
#include "config/expand.hpp"
#include "config/file_checks.hpp"
#include "config/schedule_rules.hpp"
#include "config/yaml_tree.hpp"
#include "util/duration.hpp"

#include <boost/url/parse.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <malloc.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <thread>

namespace config {

namespace {

// Headers an http sink sets itself: message framing (net::Client's is_framing_header)
// and the Idempotency-Key of DESIGN §6. Compared case-insensitively, as HTTP does.
bool
is_reserved_header(std::string_view name)
{
  static constexpr std::string_view k_reserved[] = {
    "host", "content-length", "transfer-encoding", "connection",     "keep-alive",
    "te",   "trailer",        "upgrade",           "idempotency-key"
  };
  return std::any_of(std::begin(k_reserved), std::end(k_reserved), [&](std::string_view r) {
    return r.size() == name.size() &&
           std::equal(r.begin(), r.end(), name.begin(), [](char x, char y) {
             return x == std::tolower(static_cast<unsigned char>(y));
           });
  });
}

// A config is a few KB per hundred users; 64 MiB is far beyond any real one and keeps
// a mistaken path (a log file, /dev/zero) from eating memory.
constexpr std::size_t k_max_file_bytes = 64 * 1024 * 1024;
// Node visits allowed while walking the tree. Anchors and aliases share nodes, so a
// "billion laughs" document is small to parse but huge to walk: the budget stops it.
// 10,000 users with three sinks each need about 400,000 visits.
constexpr std::size_t k_max_node_visits = 2'000'000;
constexpr std::size_t k_error_weight = 10;
constexpr std::size_t k_max_socket_path = 107; // sun_path is 108 bytes with the NUL

// The "found …" part of a message: the value as written, never an expanded one.
std::string
describe(const YamlNode& node)
{
  switch (node.type()) {
    case YamlType::null:
      return "nothing";
    case YamlType::sequence:
      return "a sequence";
    case YamlType::map:
      return "a mapping";
    case YamlType::scalar: {
      std::string s(node.scalar());
      if (s.size() > 60) {
        s = s.substr(0, 57) + "...";
      }
      std::string quoted = "\"";
      for (const char c : s) {
        if (c == '"' || c == '\\') {
          quoted += '\\';
          quoted += c;
        } else if (c == '\n') {
          quoted += "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20) {
          quoted += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          quoted += c;
        }
      }
      return quoted + "\"";
    }
    case YamlType::undefined:
      break;
  }
  return "nothing";
}

std::string
join(const std::vector<std::string>& items, std::string_view sep = ", ")
{
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) {
      out += sep;
    }
    out += i;
  }
  return out;
}

bool
is_name(std::string_view s, std::size_t max_len)
{
  if (s.empty() || s.size() > max_len) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// Accepts UTF-8 without NUL bytes; returns the byte offset of the first bad byte.
std::optional<std::size_t>
find_invalid_utf8(std::string_view s)
{
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if (c == 0) {
      return i;
    }
    if (c < 0x80) {
      len = 1;
    } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
      len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
    } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
      len = 4;
    } else {
      return i;
    }
    if (i + len > s.size()) {
      return i;
    }
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return i;
      }
    }
    i += len;
  }
  return std::nullopt;
}

struct TooManyNodes
{};

// A key path such as users[12].sinks[0].url, held as a link to its parent and spelled
// out only when a message needs it: a 10,000-user config walks some 400,000 of them and
// has no error. A KeyPath refers to its parent and its name: keep it no longer than them.
class KeyPath
{
public:
  // A top-level path ("controllers", "control.socket"); "" is the root.
  KeyPath(const char* name)
    : m_name(name)
  {
  }
  // A mapping key: a view into the YamlTree, which outlives the walk.
  KeyPath(std::string_view name)
    : m_name(name)
  {
  }
  KeyPath(std::string&&) = delete; // would outlive the string

  [[nodiscard]] KeyPath child(std::string_view key) const { return KeyPath(this, key, 0, false); }
  [[nodiscard]] KeyPath at(std::size_t index) const { return KeyPath(this, {}, index, true); }
  [[nodiscard]] bool empty() const { return m_parent == nullptr && m_name.empty(); }

  [[nodiscard]] std::string str() const
  {
    std::string out = m_parent == nullptr ? std::string() : m_parent->str();
    if (m_is_index) {
      out += fmt::format("[{}]", m_index);
    } else {
      if (!out.empty()) {
        out += '.';
      }
      out += m_name;
    }
    return out;
  }

private:
  KeyPath(const KeyPath* parent, std::string_view name, std::size_t index, bool is_index)
    : m_parent(parent)
    , m_name(name)
    , m_index(index)
    , m_is_index(is_index)
  {
  }

  const KeyPath* m_parent = nullptr;
  std::string_view m_name;
  std::size_t m_index = 0;
  bool m_is_index = false;
};

class Reader
{
public:
  Reader(std::string file, Diagnostics& diagnostics)
    : m_file(std::move(file))
    , m_diag(diagnostics)
  {
  }

  Mark mark(const YamlNode& node) const
  {
    const auto m = node.mark();
    if (m.is_null()) {
      return Mark{ m_file, 1, 1 };
    }
    return Mark{ m_file, m.line + 1, m.column + 1 };
  }

  void error(const YamlNode& node, const KeyPath& path, const std::string& message)
  {
    m_diag.add(mark(node), path.str(), message);
    // An error costs far more than a visit (a formatted message): aliases that repeat
    // a mistake must hit the budget as fast as aliases that repeat valid nodes.
    m_visits += k_error_weight;
    visit();
  }

  void visit()
  {
    if (++m_visits > k_max_node_visits) {
      throw TooManyNodes{};
    }
  }

  // Checks that `node` is a mapping whose keys are known and unique; calls `each`
  // for every known key. Returns false (after reporting) when it is not a mapping.
  bool map(const YamlNode& node, const KeyPath& path, std::initializer_list<std::string_view> known,
           const std::function<void(std::string_view key, const YamlNode& key_node,
                                    const YamlNode& value)>& each)
  {
    visit();
    if (!node.is_map()) {
      error(node, path.empty() ? "(root)" : path, "expected a mapping, found " + describe(node));
      return false;
    }
    // Bit i: known key i was seen (a mapping has at most a dozen known keys).
    std::uint32_t seen = 0;
    for (const auto& kv : node.entries()) {
      visit();
      const YamlNode& key = kv.first;
      const KeyPath child_path = path.child(key.scalar());
      if (!key.is_scalar()) {
        error(key, path.empty() ? "(root)" : path, "expected a key, found " + describe(key));
        continue;
      }
      const auto* found = std::find(known.begin(), known.end(), key.scalar());
      if (found == known.end()) {
        std::vector<std::string> names(known.begin(), known.end());
        error(key, child_path,
              fmt::format("expected a known key ({}), found unknown key {}", join(names),
                          describe(key)));
        continue;
      }
      const auto bit = std::uint32_t{ 1 } << static_cast<unsigned>(found - known.begin());
      if ((seen & bit) != 0) {
        error(key, child_path, "expected each key once, found it again");
        continue;
      }
      seen |= bit;
      each(key.scalar(), key, kv.second);
    }
    return true;
  }

  std::optional<std::string> string(const YamlNode& node, const KeyPath& path)
  {
    visit();
    if (!node.is_scalar() || node.scalar().empty()) {
      error(node, path, "expected a string, found " + describe(node));
      return std::nullopt;
    }
    return std::string(node.scalar());
  }

  // A string that may hold ${ENV} and ${file:PATH}.
  std::optional<std::string> expanded(const YamlNode& node, const KeyPath& path)
  {
    auto raw = string(node, path);
    if (!raw) {
      return std::nullopt;
    }
    auto value = expand(*raw);
    if (!value) {
      error(node, path, value.error().message);
      return std::nullopt;
    }
    return std::move(*value);
  }

  // An expanded path; a relative path is taken from the config file's directory.
  std::optional<std::string> path(const YamlNode& node, const KeyPath& key_path)
  {
    auto value = expanded(node, key_path);
    if (!value) {
      return std::nullopt;
    }
    if (!value->empty() && (*value)[0] != '/') {
      const auto slash = m_file.rfind('/');
      const std::string dir = slash == std::string::npos ? "." : m_file.substr(0, slash);
      *value = dir + "/" + *value;
    }
    return value;
  }

  std::optional<util::Seconds> duration(const YamlNode& node, const KeyPath& path)
  {
    visit();
    if (!node.is_scalar() || node.scalar().empty()) {
      error(node, path,
            "expected a duration such as 90s, 15m, 24h, 7d or 1h30m, found " + describe(node));
      return std::nullopt;
    }
    auto d = util::parse_duration(node.scalar());
    if (!d) {
      error(node, path, d.error().message + ", found " + describe(node));
      return std::nullopt;
    }
    return *d;
  }

  std::optional<int> integer(const YamlNode& node, const KeyPath& path, int min, int max)
  {
    visit();
    const auto bad = [&] {
      error(node, path,
            fmt::format("expected an integer from {} to {}, found {}", min, max, describe(node)));
      return std::nullopt;
    };
    if (!node.is_scalar()) {
      return bad();
    }
    const std::string s(node.scalar());
    if (s.empty() || s.size() > 9 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return bad();
    }
    const int v = std::stoi(s);
    if (v < min || v > max) {
      return bad();
    }
    return v;
  }

  std::optional<bool> boolean(const YamlNode& node, const KeyPath& path)
  {
    visit();
    if (node.is_scalar() && (node.scalar() == "true" || node.scalar() == "false")) {
      return node.scalar() == "true";
    }
    error(node, path, "expected true or false, found " + describe(node));
    return std::nullopt;
  }

  std::optional<std::string> choice(const YamlNode& node, const KeyPath& path,
                                    std::initializer_list<std::string_view> options)
  {
    visit();
    if (node.is_scalar() &&
        std::find(options.begin(), options.end(), node.scalar()) != options.end()) {
      return std::string(node.scalar());
    }
    std::vector<std::string> names(options.begin(), options.end());
    error(node, path,
          fmt::format("expected one of {}, found {}", join(names, " | "), describe(node)));
    return std::nullopt;
  }

  // Calls `each` for the items of a sequence; reports anything else.
  bool sequence(const YamlNode& node, const KeyPath& path,
                const std::function<void(std::size_t index, const YamlNode& item)>& each)
  {
    visit();
    if (!node.is_sequence()) {
      error(node, path, "expected a sequence, found " + describe(node));
      return false;
    }
    std::size_t i = 0;
    for (const auto item : node.items()) {
      visit();
      each(i, item);
      ++i;
    }
    return true;
  }

  const std::string& file() const { return m_file; }

private:
  std::string m_file;
  Diagnostics& m_diag;
  std::size_t m_visits = 0;
};

struct Url
{
  std::string scheme;
  std::string host;
  std::string normalised; // scheme://host:port/path/ lower-cased host, default port explicit
};

std::optional<Url>
parse_url(const std::string& text)
{
  auto r = boost::urls::parse_absolute_uri(text);
  if (!r) {
    return std::nullopt;
  }
  Url url;
  url.scheme = std::string(r->scheme());
  std::transform(url.scheme.begin(), url.scheme.end(), url.scheme.begin(), ::tolower);
  if (url.scheme != "http" && url.scheme != "https") {
    return std::nullopt;
  }
  if (!r->has_authority() || r->encoded_host().empty() || r->has_userinfo() || r->has_query() ||
      r->has_fragment()) {
    return std::nullopt;
  }
  url.host = std::string(r->encoded_host());
  std::transform(url.host.begin(), url.host.end(), url.host.begin(), ::tolower);
  std::string port = std::string(r->port());
  if (port.empty()) {
    port = url.scheme == "https" ? "443" : "80";
  }
  std::string path = std::string(r->encoded_path());
  if (path.empty() || path.back() != '/') {
    path += '/';
  }
  url.normalised = url.scheme + "://" + url.host + ":" + port + path;
  return url;
}

bool
is_loopback_host(const std::string& host)
{
  return host == "localhost" || host == "[::1]" || host.starts_with("127.");
}

// Policy keys shared by `defaults:` and each user.
constexpr std::array<std::string_view, 8> k_policy_keys = {
  "schedule", "timezone", "jitter", "lifetime", "grace", "failure_budget", "prune", "token_prefix"
};

class Loader
{
public:
  Loader(std::string file, Diagnostics& diag)
    : m_r(std::move(file), diag)
    , m_diag(diag)
  {
  }

  // Fills `c` (whose recipients walk_recipients() already read) from the root node.
  void run(Config& c, const YamlNode& root)
  {
    c.path = m_r.file();
    m_defaults_mark = Mark{ m_r.file(), 1, 1 };
    m_lifetime_mark = m_defaults_mark;
    m_timezone_mark = m_defaults_mark;
    const YamlNode* users = nullptr;
    YamlNode users_copy;
    m_r.map(
      root, "",
      { "state_dir", "control", "metrics", "log", "prune_interval", "catch_up_spread",
        "audit_retention", "retry", "controllers", "recipients", "defaults", "users", "notify" },
      [&](std::string_view key, const YamlNode&, const YamlNode& v) {
        if (key == "state_dir") {
          set(c.state_dir, m_r.path(v, key));
        } else if (key == "control") {
          control(c, v);
        } else if (key == "metrics") {
          metrics(c, v);
        } else if (key == "log") {
          log(c, v);
        } else if (key == "prune_interval") {
          set(c.prune_interval, m_r.duration(v, key));
        } else if (key == "catch_up_spread") {
          set(c.catch_up_spread, m_r.duration(v, key));
        } else if (key == "audit_retention") {
          set(c.audit_retention, m_r.duration(v, key));
        } else if (key == "retry") {
          retry(c, v);
        } else if (key == "notify") {
          // Notification targets are sinks without recipients (docs/notifications.md).
          sinks(c.notify, v, key, true);
        } else if (key == "controllers") {
          controllers(c, v);
        } else if (key == "recipients") {
          // Walked first by walk_recipients(): sinks refer to them.
        } else if (key == "defaults") {
          m_defaults_mark = m_r.mark(v);
          policy(c.defaults, v, "defaults", m_defaults_mark, m_timezone_mark, m_lifetime_mark);
        } else if (key == "users") {
          users_copy = v;
          users = &users_copy;
        }
      });
    // Users come last: they refer to controllers, recipients and defaults.
    if (users != nullptr) {
      this->users(c, *users);
    }
    if (root.is_map() && c.controllers.empty() && !root["controllers"]) {
      m_r.error(root, "controllers", "expected at least one controller, found none");
    }
  }

private:
  template<typename T, typename U>
  static void set(T& target, std::optional<U>&& value)
  {
    if (value) {
      target = std::move(*value);
    }
  }

  void control(Config& c, const YamlNode& node)
  {
    const KeyPath base("control");
    m_r.map(node, base, { "socket", "group" },
            [&](std::string_view key, const YamlNode&, const YamlNode& v) {
              const KeyPath p = base.child(key);
              if (key == "socket") {
                if (auto s = m_r.path(v, p)) {
                  if (s->size() > k_max_socket_path) {
                    m_r.error(
                      v, p,
                      fmt::format("expected a socket path of at most {} bytes, found {} bytes",
                                  k_max_socket_path, s->size()));
                  } else {
                    c.control_socket = *s;
                  }
                }
              } else if (key == "group") {
                set(c.control_group, m_r.string(v, p));
              }
            });
  }

  void metrics(Config& c, const YamlNode& node)
  {
    m_r.map(
      node, "metrics", { "listen" }, [&](std::string_view, const YamlNode&, const YamlNode& v) {
        auto s = m_r.string(v, "metrics.listen");
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
          m_r.error(v, "metrics.listen",
                    "expected HOST:PORT such as 127.0.0.1:9817, found " + describe(v));
          return;
        }
        c.metrics_listen = *s;
      });
  }

  void log(Config& c, const YamlNode& node)
  {
    m_r.map(
      node, "log", { "level", "format" },
      [&](std::string_view key, const YamlNode&, const YamlNode& v) {
        if (key == "level") {
          set(c.log_level, m_r.choice(v, "log.level", { "debug", "info", "warning", "error" }));
        } else {
          set(c.log_format, m_r.choice(v, "log.format", { "text", "json" }));
        }
      });
  }

  void retry(Config& c, const YamlNode& node)
  {
    const KeyPath base("retry");
    const bool ok = m_r.map(node, base, { "attempts", "initial", "max" },
                            [&](std::string_view key, const YamlNode&, const YamlNode& v) {
                              const KeyPath p = base.child(key);
                              if (key == "attempts") {
                                set(c.retry.attempts, m_r.integer(v, p, 1, 100));
                              } else if (key == "initial") {
                                set(c.retry.initial, m_r.duration(v, p));
                              } else {
                                set(c.retry.max, m_r.duration(v, p));
                              }
                            });
    if (ok && c.retry.initial > c.retry.max) {
      m_r.error(node, "retry",
                fmt::format("expected initial ≤ max, found initial {} > max {}",
                            util::format_duration(c.retry.initial),
                            util::format_duration(c.retry.max)));
    }
  }

  // Checks an http(s) URL: https anywhere, http only for loopback hosts or with
  // insecure_http. Returns the normalised form for duplicate detection.
  std::optional<std::string> check_url(const YamlNode& v, const KeyPath& p, const std::string& url,
                                       bool insecure_http)
  {
    const auto parsed = parse_url(url);
    if (!parsed) {
      m_r.error(
        v, p, "expected an http(s) URL such as https://jenkins.example.com/, found " + describe(v));
      return std::nullopt;
    }
    if (parsed->scheme == "http" && !insecure_http && !is_loopback_host(parsed->host)) {
      m_r.error(
        v, p,
        "expected https (http only for loopback hosts or with insecure_http: true), found " +
          describe(v));
      return std::nullopt;
    }
    return parsed->normalised;
  }

  void controllers(Config& c, const YamlNode& node)
  {
    std::map<std::string, std::pair<std::string, int>> urls; // normalised -> (name, line)
    const KeyPath list("controllers");
    m_r.sequence(node, list, [&](std::size_t i, const YamlNode& item) {
      const KeyPath base = list.at(i);
      Controller ctl;
      ctl.mark = m_r.mark(item);
      YamlNode url_node;
      const bool ok = m_r.map(
        item, base,
        { "name", "url", "admin_user", "admin_token_file", "ca_file", "timeout", "max_concurrent",
          "batch_size", "insecure_http" },
        [&](std::string_view key, const YamlNode&, const YamlNode& v) {
          const KeyPath p = base.child(key);
          if (key == "name") {
            if (auto s = m_r.string(v, p)) {
              if (!is_name(*s, 64)) {
                m_r.error(
                  v, p,
                  "expected a name of letters, digits, '.', '_' or '-' (at most 64), found " +
                    describe(v));
              } else if (c.find_controller(*s) != nullptr) {
                m_r.error(v, p,
                          "expected a unique controller name, found " + describe(v) + " again");
              } else {
                ctl.name = *s;
              }
            }
          } else if (key == "url") {
            url_node = v;
            set(ctl.url, m_r.expanded(v, p));
          } else if (key == "admin_user") {
            set(ctl.admin_user, m_r.string(v, p));
          } else if (key == "admin_token_file") {
            if (auto f = m_r.path(v, p)) {
              auto content = read_secret_file(*f);
              if (!content) {
                m_r.error(v, p, fmt::format("{}: {}", *f, content.error().message));
              } else {
                ctl.admin_token_file = *f;
              }
            }
          } else if (key == "ca_file") {
            if (auto f = m_r.path(v, p)) {
              if (auto r = check_readable(*f); !r) {
                m_r.error(v, p, r.error().message);
              } else {
                ctl.ca_file = *f;
              }
            }
          } else if (key == "timeout") {
            set(ctl.timeout, m_r.duration(v, p));
          } else if (key == "max_concurrent") {
            set(ctl.max_concurrent, m_r.integer(v, p, 1, 64));
          } else if (key == "batch_size") {
            set(ctl.batch_size, m_r.integer(v, p, 1, 500));
          } else if (key == "insecure_http") {
            set(ctl.insecure_http, m_r.boolean(v, p));
          }
        });
      if (!ok) {
        return;
      }
      for (const auto* required : { "name", "url", "admin_user", "admin_token_file" }) {
        if (!item[required]) {
          m_r.error(item, base, fmt::format("expected key {}, found none", required));
        }
      }
      if (!ctl.url.empty()) {
        if (auto norm = check_url(url_node, base.child("url"), ctl.url, ctl.insecure_http)) {
          const auto [it, inserted] =
            urls.emplace(*norm, std::pair(ctl.name, m_r.mark(url_node).line));
          if (!inserted) {
            m_r.error(url_node, base.child("url"),
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
        c.controllers.push_back(std::move(ctl));
      }
    });
    if (node.is_sequence() && node.size() == 0) {
      m_r.error(node, "controllers", "expected at least one controller, found none");
    }
  }

  // Recipients are a mapping name → key file: every key is a user-chosen name, so
  // they are walked here instead of through Reader::map's known-key check.
  void recipients_walk(Config& c, const YamlNode& node)
  {
    m_r.visit();
    if (!node.is_map()) {
      m_r.error(node, "recipients",
                "expected a mapping of name: public key file, found " + describe(node));
      return;
    }
    const KeyPath recipients("recipients");
    for (const auto& kv : node.entries()) {
      m_r.visit();
      const std::string name(kv.first.scalar());
      const KeyPath p = recipients.child(name);
      if (!is_name(name, 64)) {
        m_r.error(kv.first, "recipients",
                  "expected a name of letters, digits, '.', '_' or '-', found " +
                    describe(kv.first));
        continue;
      }
      if (!m_declared_recipients.insert(name).second) {
        m_r.error(kv.first, p, "expected each recipient once, found it again");
        continue;
      }
      auto f = m_r.path(kv.second, p);
      if (!f) {
        continue;
      }
      if (auto r = check_readable(*f); !r) {
        m_r.error(kv.second, p, r.error().message);
        continue;
      }
      if (auto r = check_not_writable_by_others(*f, false); !r) {
        m_r.error(kv.second, p, r.error().message);
        continue;
      }
      c.recipients.push_back(Recipient{ name, *f, m_r.mark(kv.second) });
    }
  }

  void policy(Policy& pol, const YamlNode& node, const KeyPath& base, Mark& schedule_mark,
              Mark& timezone_mark, Mark& lifetime_mark)
  {
    m_r.map(node, base,
            { k_policy_keys[0], k_policy_keys[1], k_policy_keys[2], k_policy_keys[3],
              k_policy_keys[4], k_policy_keys[5], k_policy_keys[6], k_policy_keys[7] },
            [&](std::string_view key, const YamlNode&, const YamlNode& v) {
              policy_key(pol, key, v, base.child(key), schedule_mark, timezone_mark, lifetime_mark);
            });
  }

  // One key of `defaults:` or of a user's overrides.
  void policy_key(Policy& pol, std::string_view key, const YamlNode& v, const KeyPath& p,
                  Mark& schedule_mark, Mark& timezone_mark, Mark& lifetime_mark)
  {
    if (key == "schedule") {
      if (auto s = m_r.string(v, p)) {
        pol.schedule = *s;
        schedule_mark = m_r.mark(v);
      }
    } else if (key == "timezone") {
      if (auto s = m_r.string(v, p)) {
        pol.timezone = *s;
        timezone_mark = m_r.mark(v);
      }
    } else if (key == "jitter") {
      set(pol.jitter, m_r.duration(v, p));
    } else if (key == "lifetime") {
      if (auto d = m_r.duration(v, p)) {
        pol.lifetime = *d;
        lifetime_mark = m_r.mark(v);
      }
    } else if (key == "grace") {
      set(pol.grace, m_r.duration(v, p));
    } else if (key == "failure_budget") {
      set(pol.failure_budget, m_r.duration(v, p));
    } else if (key == "prune") {
      if (auto s = m_r.choice(v, p, { "managed", "all" })) {
        pol.prune = *s == "all" ? PrunePolicy::all : PrunePolicy::managed;
      }
    } else if (key == "token_prefix") {
      if (auto s = m_r.string(v, p)) {
        if (!is_name(*s, 24)) {
          m_r.error(v, p, "expected 1 to 24 of [A-Za-z0-9._-], found " + describe(v));
        } else {
          pol.token_prefix = *s;
        }
      }
    }
  }

  void users(Config& c, const YamlNode& node)
  {
    // (controller, folded user) -> line of its first appearance
    std::map<std::pair<std::string, std::string>, int> seen;
    const KeyPath list("users");
    m_r.sequence(node, list, [&](std::size_t i, const YamlNode& item) {
      const KeyPath base = list.at(i);
      User u;
      u.policy = c.defaults;
      u.mark = m_r.mark(item);
      u.schedule_mark = m_defaults_mark;
      u.timezone_mark = m_timezone_mark;
      u.lifetime_mark = m_lifetime_mark;
      YamlNode user_node;
      YamlNode controller_node;
      bool sinks_seen = false;
      const bool ok = m_r.map(item, base,
                              { "user", "controller", "sinks", "schedule", "timezone", "jitter",
                                "lifetime", "grace", "failure_budget", "prune", "token_prefix" },
                              [&](std::string_view key, const YamlNode&, const YamlNode& v) {
                                const KeyPath p = base.child(key);
                                if (key == "user") {
                                  user_node = v;
                                  set(u.user, m_r.string(v, p));
                                } else if (key == "controller") {
                                  controller_node = v;
                                  set(u.controller, m_r.string(v, p));
                                } else if (key == "sinks") {
                                  sinks_seen = true;
                                  sinks(u.sinks, v, p);
                                } else {
                                  // Policy overrides are checked by the same code as defaults.
                                  policy_key(u.policy, key, v, p, u.schedule_mark, u.timezone_mark,
                                             u.lifetime_mark);
                                }
                              });
      if (!ok) {
        return;
      }
      if (!item["user"]) {
        m_r.error(item, base, "expected key user, found none");
      }
      if (!item["controller"]) {
        m_r.error(item, base, "expected key controller, found none");
      }
      if (!sinks_seen) {
        m_r.error(item, base.child("sinks"), "expected at least one sink, found none");
      }
      const Controller* ctl = nullptr;
      if (!u.controller.empty()) {
        ctl = c.find_controller(u.controller);
        if (ctl == nullptr) {
          std::vector<std::string> names;
          for (const auto& x : c.controllers) {
            names.push_back(x.name);
          }
          m_r.error(controller_node, base.child("controller"),
                    fmt::format("expected a controller name ({}), found {}",
                                names.empty() ? "none are defined" : join(names),
                                describe(controller_node)));
        }
      }
      if (ctl != nullptr && !u.user.empty()) {
        if (fold_user_id(u.user) == fold_user_id(ctl->admin_user)) {
          m_r.error(
            user_node, base.child("user"),
            fmt::format("expected a user other than controller \"{}\"'s admin_user, found {}",
                        ctl->name, describe(user_node)));
        }
        const auto [it, inserted] =
          seen.emplace(std::pair(ctl->name, fold_user_id(u.user)), m_r.mark(user_node).line);
        if (!inserted) {
          m_r.error(user_node, base.child("user"),
                    fmt::format("expected each user once per controller (Jenkins ignores case), "
                                "found {} again (first at line {})",
                                describe(user_node), it->second));
        }
      }
      if (!u.user.empty() && !u.controller.empty()) {
        c.users.push_back(std::move(u));
      }
    });
  }

  // A user's sinks, or with `notify` the notify: targets (exec or http, no recipients).
  void sinks(std::vector<Sink>& out, const YamlNode& node, const KeyPath& base, bool notify = false)
  {
    const bool ok = m_r.sequence(node, base, [&](std::size_t i, const YamlNode& item) {
      const KeyPath sp = base.at(i);
      m_r.visit();
      if (!item.is_map()) {
        m_r.error(item, sp, "expected a mapping, found " + describe(item));
        return;
      }
      const YamlNode type_node = item["type"];
      if (!type_node) {
        m_r.error(item, sp,
                  notify ? "expected key type (exec | http), found none"
                         : "expected key type (file | exec | http), found none");
        return;
      }
      const auto type = notify
                          ? m_r.choice(type_node, sp.child("type"), { "exec", "http" })
                          : m_r.choice(type_node, sp.child("type"), { "file", "exec", "http" });
      if (!type) {
        return;
      }
      Sink s;
      s.mark = m_r.mark(item);
      YamlNode url_node;
      bool ok_map = false;
      const auto common = [&](std::string_view key, const YamlNode& v) {
        const KeyPath p = sp.child(key);
        if (key == "recipients") {
          recipients_list(s, v, p);
        } else if (key == "timeout") {
          set(s.timeout, m_r.duration(v, p));
        }
      };
      if (*type == "file") {
        s.type = SinkType::file;
        ok_map = m_r.map(item, sp, { "type", "recipients", "path", "mode", "group" },
                         [&](std::string_view key, const YamlNode&, const YamlNode& v) {
                           const KeyPath p = sp.child(key);
                           if (key == "path") {
                             set(s.path, m_r.path(v, p));
                           } else if (key == "mode") {
                             mode(s, v, p);
                           } else if (key == "group") {
                             set(s.group, m_r.string(v, p));
                           } else {
                             common(key, v);
                           }
                         });
        if (ok_map && !item["path"]) {
          m_r.error(item, sp, "expected key path, found none");
        }
      } else if (*type == "exec") {
        s.type = SinkType::exec;
        ok_map = m_r.map(item, sp, { "type", "recipients", "command", "timeout" },
                         [&](std::string_view key, const YamlNode&, const YamlNode& v) {
                           if (key == "command") {
                             command(s, v, sp.child("command"));
                           } else {
                             common(key, v);
                           }
                         });
        if (ok_map && !item["command"]) {
          m_r.error(item, sp, "expected key command, found none");
        }
      } else {
        s.type = SinkType::http;
        ok_map = m_r.map(item, sp,
                         { "type", "recipients", "url", "method", "timeout", "ca_file", "headers",
                           "insecure_http" },
                         [&](std::string_view key, const YamlNode&, const YamlNode& v) {
                           const KeyPath p = sp.child(key);
                           if (key == "url") {
                             url_node = v;
                             set(s.url, m_r.expanded(v, p));
                           } else if (key == "method") {
                             set(s.method, m_r.choice(v, p, { "POST", "PUT" }));
                           } else if (key == "ca_file") {
                             if (auto f = m_r.path(v, p)) {
                               if (auto r = check_readable(*f); !r) {
                                 m_r.error(v, p, r.error().message);
                               } else {
                                 s.ca_file = *f;
                               }
                             }
                           } else if (key == "headers") {
                             headers(s, v, p);
                           } else if (key == "insecure_http") {
                             set(s.insecure_http, m_r.boolean(v, p));
                           } else {
                             common(key, v);
                           }
                         });
        if (ok_map && !item["url"]) {
          m_r.error(item, sp, "expected key url, found none");
        }
        if (!s.url.empty()) {
          check_url(url_node, sp.child("url"), s.url, s.insecure_http);
        }
      }
      if (!ok_map) {
        return;
      }
      if (notify && item["recipients"]) {
        m_r.error(item["recipients"], sp.child("recipients"),
                  "expected no recipients: a notification is no envelope");
      } else if (!notify && !item["recipients"]) {
        m_r.error(item, sp, "expected key recipients, found none");
      }
      out.push_back(std::move(s));
    });
    if (ok && node.size() == 0 && !notify) {
      m_r.error(node, base, "expected at least one sink, found none");
    }
  }

  void recipients_list(Sink& s, const YamlNode& v, const KeyPath& p)
  {
    const bool ok = m_r.sequence(v, p, [&](std::size_t j, const YamlNode& r) {
      const KeyPath rp = p.at(j);
      auto name = m_r.string(r, rp);
      if (!name) {
        return;
      }
      if (m_declared_recipients.count(*name) == 0) {
        std::vector<std::string> names(m_declared_recipients.begin(), m_declared_recipients.end());
        m_r.error(r, rp,
                  fmt::format("expected a recipient name ({}), found {}",
                              names.empty() ? "none are defined" : join(names), describe(r)));
        return;
      }
      if (std::find(s.recipients.begin(), s.recipients.end(), *name) != s.recipients.end()) {
        m_r.error(r, rp, "expected each recipient once, found " + describe(r) + " again");
        return;
      }
      s.recipients.push_back(*name);
    });
    if (ok && v.size() == 0) {
      m_r.error(v, p, "expected at least one recipient, found none");
    }
  }

  void mode(Sink& s, const YamlNode& v, const KeyPath& p)
  {
    m_r.visit();
    const std::string text(v.scalar());
    // The tree keeps the scalar's text, so 0640 and "0640" both arrive as "0640";
    // the leading zero is required so that 640 is not mistaken for octal.
    const bool ok =
      text.size() == 4 && text[0] == '0' &&
      std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '7'; });
    if (!ok) {
      m_r.error(v, p, "expected an octal mode such as \"0640\", found " + describe(v));
      return;
    }
    const auto m = static_cast<mode_t>(std::stoi(text, nullptr, 8));
    if ((m & 0002) != 0) {
      m_r.error(v, p, "expected a mode that others cannot write, found " + describe(v));
      return;
    }
    s.mode = m;
  }

  void command(Sink& s, const YamlNode& v, const KeyPath& p)
  {
    const bool ok = m_r.sequence(v, p, [&](std::size_t j, const YamlNode& arg) {
      const KeyPath ap = p.at(j);
      if (j == 0) {
        auto exe = m_r.path(arg, ap);
        if (!exe) {
          return;
        }
        struct stat st
        {};
        if (::stat(exe->c_str(), &st) != 0) {
          m_r.error(arg, ap, fmt::format("{}: {}", *exe, std::strerror(errno)));
          return;
        }
        if (!S_ISREG(st.st_mode) || ::access(exe->c_str(), X_OK) != 0) {
          m_r.error(arg, ap, fmt::format("expected an executable file, found {}", *exe));
          return;
        }
        if (auto r = check_not_writable_by_others(*exe, true); !r) {
          m_r.error(arg, ap, r.error().message);
          return;
        }
        s.command.push_back(*exe);
      } else {
        m_r.visit();
        if (!arg.is_scalar()) {
          m_r.error(arg, ap, "expected a string, found " + describe(arg));
          return;
        }
        auto value = expand(arg.scalar());
        if (!value) {
          m_r.error(arg, ap, value.error().message);
          return;
        }
        s.command.push_back(std::move(*value));
      }
    });
    if (ok && v.size() == 0) {
      m_r.error(v, p, "expected a command with at least the program, found an empty list");
    }
  }

  void headers(Sink& s, const YamlNode& v, const KeyPath& p)
  {
    m_r.visit();
    if (!v.is_map()) {
      m_r.error(v, p, "expected a mapping of header: value, found " + describe(v));
      return;
    }
    for (const auto& kv : v.entries()) {
      m_r.visit();
      const std::string name(kv.first.scalar());
      // RFC 9110 token characters.
      const bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) != 0 ||
               std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
      });
      if (!name_ok) {
        m_r.error(kv.first, p, "expected a header name, found " + describe(kv.first));
        continue;
      }
      if (is_reserved_header(name)) {
        // The sink frames the request and sets Idempotency-Key to the token uuid itself.
        m_r.error(kv.first, p,
                  "expected a header the sink does not set itself, found \"" + name + "\"");
        continue;
      }
      const KeyPath hp = p.child(name);
      auto value = m_r.expanded(kv.second, hp);
      if (!value) {
        continue;
      }
      if (value->find_first_of("\r\n") != std::string::npos) {
        // Do not describe the value: it may come from a ${file:} secret.
        m_r.error(kv.second, hp, "expected a header value on one line, found a line break");
        continue;
      }
      s.headers.push_back(Header{ name, std::move(*value) });
    }
  }

public:
  void walk_recipients(Config& c, const YamlNode& root)
  {
    if (root.is_map() && root["recipients"]) {
      recipients_walk(c, root["recipients"]);
    }
  }

private:
  Reader m_r;
  Diagnostics& m_diag;
  // Every recipient name written, valid or not: a broken key file is reported once
  // at its own line, not again at every sink that names it.
  std::set<std::string> m_declared_recipients;
  Mark m_defaults_mark;
  Mark m_timezone_mark;
  Mark m_lifetime_mark;
};

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
      Loader loader(name, diag);
      // Recipients first: sinks refer to them wherever they are written in the file.
      loader.walk_recipients(config, docs[0]);
      loader.run(config, docs[0]);
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
  if (auto r = check_not_writable_by_others(path, false); !r) {
    diag.add_file_error(path, r.error().message);
    return util::make_error("config", diag.to_string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diag.add_file_error(path, fmt::format("cannot be read: {}", std::strerror(errno)));
    return util::make_error("config", diag.to_string());
  }
  struct stat st
  {};
  if (::stat(path.c_str(), &st) == 0 && static_cast<std::size_t>(st.st_size) > k_max_file_bytes) {
    diag.add_file_error(path, "expected a config of at most 64 MiB, found a larger file");
    return util::make_error("config", diag.to_string());
  }
  std::string text;
  text.resize(static_cast<std::size_t>(st.st_size));
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return load_text(text, path);
}

} // namespace config
