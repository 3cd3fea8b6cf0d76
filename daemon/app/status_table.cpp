#include "app/status_table.hpp"

#include "app/control_client.hpp"
#include "util/duration.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <vector>

namespace app {

namespace {

using nlohmann::json;

const json&
field(const json& object, const char* key)
{
  static const json k_null;
  if (!object.is_object()) {
    return k_null;
  }
  const auto it = object.find(key);
  return it == object.end() ? k_null : *it;
}

std::string
age(const json& seconds)
{
  if (!seconds.is_number_integer() || seconds.get<std::int64_t>() < 0) {
    return "-";
  }
  return util::format_duration(util::Seconds(seconds.get<std::int64_t>()));
}

std::string
join(const json& array, const char* separator)
{
  std::string out;
  if (array.is_array()) {
    for (const auto& item : array) {
      out +=
        (out.empty() ? "" : separator) + (item.is_string() ? item.get<std::string>() : item.dump());
    }
  }
  return out;
}

void
line(std::string& out, std::string text)
{
  out += fit(std::move(text), k_status_width) + "\n";
}

// `text` after `prefix`, broken at spaces into lines of at most 100 columns; continuation
// lines are indented four more. Nothing is cut: errors are what an operator reads this for.
void
wrap(std::string& out, const std::string& prefix, const std::string& text)
{
  std::string current = prefix;
  const auto leading = std::min(prefix.find_first_not_of(' '), prefix.size());
  const std::string indent(leading + 4, ' ');
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t room = k_status_width - current.size();
    if (text.size() - pos <= room) {
      current += text.substr(pos);
      break;
    }
    std::size_t cut = text.rfind(' ', pos + room);
    if (cut == std::string::npos || cut <= pos) {
      cut = pos + room; // one long word: break it
    }
    current += text.substr(pos, cut - pos);
    out += current + "\n";
    current = indent;
    pos = cut;
    while (pos < text.size() && text[pos] == ' ') {
      ++pos;
    }
  }
  out += current + "\n";
}

std::string
yes_no(const json& value)
{
  if (value.is_boolean()) {
    return value.get<bool>() ? "yes" : "no";
  }
  return "unknown";
}

} // namespace

std::string
short_time(const json& value)
{
  if (!value.is_string()) {
    return "-";
  }
  const auto& s = value.get_ref<const std::string&>();
  if (s.size() == 20 && s[10] == 'T' && s.back() == 'Z') {
    return s.substr(0, 10) + " " + s.substr(11, 5);
  }
  return s;
}

std::string
render_status(const json& fields)
{
  std::string out;
  const json& daemon = field(fields, "daemon");
  line(out, fmt::format("daemon {} (pid {}), up {}", text_or_dash(daemon, "version"),
                        text_or_dash(daemon, "pid"), age(field(daemon, "uptime_s"))));
  wrap(out, "config ",
       fmt::format("{}, loaded {} UTC", text_or_dash(daemon, "config"),
                   short_time(field(daemon, "config_loaded"))));
  const json& reload = field(daemon, "last_reload");
  if (reload.is_object()) {
    const auto errors = field(reload, "errors");
    const bool ok = field(reload, "ok").is_boolean() && field(reload, "ok").get<bool>();
    line(out,
         fmt::format("last reload: {} at {} UTC{}", ok ? "ok" : "rejected",
                     short_time(field(reload, "at")),
                     !ok && errors.is_array() ? fmt::format(" ({} errors)", errors.size()) : ""));
    if (!ok && errors.is_array()) {
      for (const auto& e : errors) {
        wrap(out, "  ", e.is_string() ? e.get<std::string>() : e.dump());
      }
    }
  }
  const std::string running = join(field(daemon, "passes_running"), ", ");
  line(out, "passes running: " + (running.empty() ? std::string("none") : running));

  // Controllers: 16 + 9 + 14 + 6 + 54 = 99 columns with the separating spaces.
  out += "\n";
  line(out, fmt::format("{:<16} {:<9} {:<14} {:>6} {}", "CONTROLLER", "REACHABLE", "VERSION",
                        "SKEW", "CAPABILITIES"));
  for (const auto& c : field(fields, "controllers")) {
    const json& skew = field(c, "clock_skew_s");
    const std::string name = text_or_dash(c, "name");
    if (name.size() > 16) {
      line(out, name); // never cut a name: on a line of its own, the row below it
    }
    const std::string capabilities = join(field(c, "capabilities"), ",");
    line(out, fmt::format("{:<16} {:<9} {:<14} {:>6} {}", name.size() > 16 ? "" : name,
                          yes_no(field(c, "reachable")), fit(text_or_dash(c, "version"), 14),
                          skew.is_number_integer() ? fmt::format("{:+}s", skew.get<std::int64_t>())
                                                   : "-",
                          capabilities.empty() ? "-" : capabilities));
    if (const json& stale = field(c, "stale_database"); stale.is_boolean() && stale.get<bool>()) {
      wrap(out, "  ",
           name + ": the database is stale (tokens of ours it does not know): no rotation or "
                  "pruning until an operator acts");
    }
    if (const json& error = field(c, "last_error"); error.is_string()) {
      wrap(out, "  ",
           fmt::format("{}: {} ({})", name, error.get<std::string>(), text_or_dash(c, "url")));
    }
  }

  // Slots: 24 + 12 + 8 + 11 + 16 + 16 + 5 = 92, plus 6 spaces = 98 columns.
  out += "\n";
  line(out, fmt::format("{:<24} {:<12} {:>8} {:<11} {:<16} {:<16} {:>5}", "SLOT", "STATE", "AGE",
                        "LAST RESULT", "LAST ROTATION", "NEXT RUN (UTC)", "FAILS"));
  for (const auto& s : field(fields, "slots")) {
    const std::string slot = text_or_dash(s, "slot");
    const json& failures = field(s, "consecutive_failures");
    if (slot.size() > 24) {
      line(out, slot);
    }
    line(out, fmt::format("{:<24} {:<12} {:>8} {:<11} {:<16} {:<16} {:>5}",
                          slot.size() > 24 ? "" : slot, fit(text_or_dash(s, "state"), 12),
                          age(field(s, "token_age_s")), fit(text_or_dash(s, "last_result"), 11),
                          short_time(field(s, "last_rotation")), short_time(field(s, "next_run")),
                          failures.is_number_integer() ? failures.dump() : "-"));
    std::vector<std::string> details;
    if (const json& token = field(s, "current_token"); token.is_string()) {
      std::string text = "token " + token.get<std::string>();
      if (const json& expires = field(s, "expires"); expires.is_string()) {
        text += ", expires " + short_time(expires);
      }
      if (const json& jenkins = field(s, "jenkins_expires"); jenkins.is_string()) {
        text += " (Jenkins: " + short_time(jenkins) + ")";
      }
      details.push_back(std::move(text));
    }
    if (const json& retires = field(s, "previous_retires"); retires.is_string()) {
      details.push_back("previous retires " + short_time(retires));
    }
    if (const json& until = field(s, "backoff_until"); until.is_string()) {
      details.push_back("backoff until " + short_time(until));
    }
    // Packed into indented lines of at most 100 columns, never cut.
    std::string pending;
    for (auto& d : details) {
      if (!pending.empty() && pending.size() + 2 + d.size() > k_status_width) {
        line(out, std::move(pending));
        pending.clear();
      }
      pending += (pending.empty() ? "  " : "; ") + d;
    }
    if (!pending.empty()) {
      line(out, std::move(pending));
    }
    if (const json& error = field(s, "last_error"); error.is_string()) {
      wrap(out, "  last error: ", error.get<std::string>());
    }
  }

  // Admin tokens (admin_token_rotation): 16 + 6 + 8 + 16 + 16 = 62, plus 4 spaces.
  if (const json& admins = field(fields, "admin_tokens"); admins.is_array() && !admins.empty()) {
    out += "\n";
    line(out, fmt::format("{:<16} {:<6} {:>8} {:<16} {:<16}", "ADMIN TOKEN", "STORE", "AGE",
                          "SINCE", "NEXT ROTATION"));
    for (const auto& a : admins) {
      const std::string name = text_or_dash(a, "controller");
      if (name.size() > 16) {
        line(out, name);
      }
      line(out, fmt::format("{:<16} {:<6} {:>8} {:<16} {:<16}", name.size() > 16 ? "" : name,
                            fit(text_or_dash(a, "store"), 6), age(field(a, "age_s")),
                            short_time(field(a, "since")), short_time(field(a, "next_rotation"))));
      std::string details;
      if (const json& token = field(a, "token"); token.is_string()) {
        details = "  token " + token.get<std::string>();
      }
      if (const json& retires = field(a, "previous_retires"); retires.is_string()) {
        details += (details.empty() ? "  " : "; ") + ("previous retires " + short_time(retires));
      }
      if (!details.empty()) {
        line(out, std::move(details));
      }
    }
  }
  return out;
}

} // namespace app
