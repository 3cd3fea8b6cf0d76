#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/control_client.hpp"
#include "app/engine.hpp"
#include "config/loader.hpp"
#include "schedule/schedule.hpp"
#include "state/store.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <sys/stat.h>

namespace app {

namespace {

constexpr int k_default_count = 5;
constexpr int k_max_count = 1000;

// JTR_NOW=<RFC 3339> replaces the clock. Test-only: it lets tests compare runs of the
// real binary with hand-computed ones; nothing else reads it.
schedule::Instant
plan_now()
{
  if (const char* fixed = std::getenv("JTR_NOW"); fixed != nullptr && *fixed != '\0') {
    auto t = schedule::parse_rfc3339(fixed);
    if (!t) {
      throw util::Fatal(util::exit_code::k_usage, "plan: JTR_NOW: " + t.error().message);
    }
    return *t;
  }
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

// JTR_REPORT_RSS=1 prints the resident set after the config is loaded (node tree freed,
// malloc_trim'd) to stderr, for tests/bench/plan-10k.
void
report_rss()
{
  const char* flag = std::getenv("JTR_REPORT_RSS");
  if (flag == nullptr || std::string_view(flag) != "1") {
    return;
  }
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) {
      std::fputs(fmt::format("jenkins-token-rotator: after load: {}\n", line).c_str(), stderr);
    }
  }
}

// What the state database says of a slot.
struct SlotState
{
  std::optional<std::string> current_token;
  std::optional<std::chrono::seconds> token_age;
  std::optional<schedule::Instant> last_rotation;
  std::optional<schedule::Instant> backoff_until;
  bool degraded = false;
  std::optional<std::string> last_error;
};

struct SlotPlan
{
  const config::User* user;
  // Points into the config's policy, which outlives the plans.
  const schedule::Zone* zone;
  schedule::Jitter jitter;
  std::vector<schedule::Instant> runs;
  std::optional<SlotState> state;
};

// Reads each slot's token and last rotation when state_dir holds a database. The store
// admits one process at a time: while `once` holds it, plan says so and stays offline.
std::optional<state::Store>
open_state(const config::Config& config)
{
  struct stat st
  {};
  if (::stat((config.state_dir + "/state.db").c_str(), &st) != 0) {
    return std::nullopt;
  }
  auto store = state::Store::open(config.state_dir);
  if (!store) {
    std::fputs(fmt::format("plan: the state was not read ({}); runs are planned as if no slot "
                           "had run\n",
                           store.error().message)
                 .c_str(),
               stderr);
    return std::nullopt;
  }
  return std::move(*store);
}

std::optional<SlotState>
read_slot(state::Store& store, const config::User& u, schedule::Instant now)
{
  auto slot = store.find_slot(u.controller, config::fold_user_id(u.user));
  if (!slot || !*slot) {
    return std::nullopt;
  }
  const auto& row = **slot;
  SlotState s;
  s.last_rotation = row.last_rotation;
  s.backoff_until = row.backoff_until;
  s.degraded = row.degraded;
  s.last_error = row.last_error;
  if (row.current_uuid) {
    if (auto t = store.token(*row.current_uuid); t && *t) {
      s.current_token = (*t)->name;
      s.token_age = now - (*t)->created;
    }
  }
  return s;
}

nlohmann::json
state_json(const std::optional<SlotState>& s)
{
  if (!s) {
    return nullptr;
  }
  const auto opt_time = [](const std::optional<schedule::Instant>& t) -> nlohmann::json {
    return t ? nlohmann::json(schedule::format_utc(*t)) : nlohmann::json(nullptr);
  };
  return { { "current_token", s->current_token ? nlohmann::json(*s->current_token) : nullptr },
           { "token_age_seconds", s->token_age ? nlohmann::json(s->token_age->count()) : nullptr },
           { "last_rotation", opt_time(s->last_rotation) },
           { "backoff_until", opt_time(s->backoff_until) },
           { "degraded", s->degraded },
           { "last_error", s->last_error ? nlohmann::json(*s->last_error) : nullptr } };
}

std::string
state_line(const SlotState& s)
{
  std::string line =
    s.current_token
      ? fmt::format("current token {}, {} old; last rotation {}", *s.current_token,
                    util::format_duration(s.token_age.value_or(std::chrono::seconds(0))),
                    s.last_rotation ? schedule::format_utc(*s.last_rotation) : "-")
      : std::string("no current token: due at the next pass");
  if (s.degraded) {
    line += "; DEGRADED: a sink does not hold the newest token";
  }
  if (s.backoff_until) {
    line += fmt::format("; backing off until {}", schedule::format_utc(*s.backoff_until));
  }
  if (s.last_error && (s.degraded || s.backoff_until)) {
    line += fmt::format("; last error: {}", *s.last_error);
  }
  return line;
}

// `plan --daemon`: the running daemon's plan (its state, its loaded config), through the
// control socket; --count as offline (the protocol takes 1..100).
int
plan_from_daemon(const Args& a)
{
  control::Request request;
  request.cmd = control::Command::plan;
  if (const auto c = a.option("count")) {
    const bool digits =
      !c->empty() && c->size() <= 3 && c->find_first_not_of("0123456789") == std::string::npos;
    request.count = digits ? std::stoi(*c) : 0;
    if (request.count < 1 || request.count > 100) {
      throw util::Fatal(
        util::exit_code::k_usage,
        fmt::format("plan: --count: expected a number from 1 to 100 with --daemon, found \"{}\"",
                    *c));
    }
  }
  const auto answer = ask_daemon(control_socket_path(a), request, std::chrono::seconds(30));
  if (!answer.ok) {
    throw util::Fatal(util::exit_code::k_failure, "plan: " + answer.error);
  }
  if (a.flag("json")) {
    std::fputs((answer.fields.dump(2) + "\n").c_str(), stdout);
    return util::exit_code::k_ok;
  }
  std::string out;
  const auto slots = answer.fields.find("slots");
  if (slots != answer.fields.end() && slots->is_array()) {
    for (const auto& s : *slots) {
      out += fmt::format("{}{}  schedule \"{}\"  timezone {}\n", out.empty() ? "" : "\n",
                         text_or_dash(s, "slot"), text_or_dash(s, "schedule"),
                         text_or_dash(s, "timezone"));
      if (const auto runs = s.find("runs"); runs != s.end() && runs->is_array()) {
        for (const auto& t : *runs) {
          out += "  " + (t.is_string() ? t.get<std::string>() : t.dump()) + "\n";
        }
      }
    }
  }
  std::fputs(out.empty() ? "no slots\n" : out.c_str(), stdout);
  return util::exit_code::k_ok;
}

} // namespace

// Prints the next --count runs of every slot, offline (DESIGN §4). --json prints one
// document: {"now", "slots": [{"slot", "controller", "user", "schedule", "timezone",
// "jitter_seconds", "runs": [RFC 3339 UTC, ...], "state": null | {"current_token",
// "token_age_seconds", "last_rotation", "backoff_until", "degraded", "last_error"}]}.
// When state_dir holds a database, runs follow each slot's last rotation.
int
cmd_plan(const std::vector<std::string>& args)
{
  const Args a("plan", args, { "json", "connect", "daemon" }, { "config", "count", "socket" });
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("plan: unexpected argument \"{}\"", a.positional()[0]));
  }
  if (a.flag("daemon") || a.option("socket")) {
    if (a.flag("connect")) {
      throw util::Fatal(util::exit_code::k_usage,
                        "plan: --connect works on the config, not through the daemon");
    }
    return plan_from_daemon(a);
  }
  int count = k_default_count;
  if (const auto c = a.option("count")) {
    const bool digits =
      !c->empty() && c->size() <= 4 && c->find_first_not_of("0123456789") == std::string::npos;
    count = digits ? std::stoi(*c) : 0;
    if (count < 1 || count > k_max_count) {
      throw util::Fatal(util::exit_code::k_usage,
                        fmt::format("plan: --count: expected a number from 1 to {}, found \"{}\"",
                                    k_max_count, *c));
    }
  }
  const auto now = plan_now();
  auto config = config::load(a.config_path());
  if (!config) {
    std::fputs((config.error().message + "\n").c_str(), stderr);
    return util::exit_code::k_config;
  }
  report_rss();

  auto store = open_state(*config);

  // config::load parsed every schedule and zone once and kept them in each policy.
  std::vector<SlotPlan> plans;
  plans.reserve(config->users.size());
  for (const auto& u : config->users) {
    const schedule::Schedule& sched = *u.policy.parsed_schedule;
    SlotPlan p{
      &u, &*u.policy.zone, schedule::Jitter::for_slot(u.slot(), u.policy.jitter), {}, std::nullopt
    };
    std::optional<schedule::Instant> last;
    if (store) {
      p.state = read_slot(*store, u, now);
      if (p.state && p.state->current_token) {
        last = p.state->last_rotation;
      }
    }
    for (int i = 0; i < count; ++i) {
      last = schedule::next_run(sched, *u.policy.zone, p.jitter, last, now);
      if (!last) {
        break;
      }
      p.runs.push_back(*last);
    }
    plans.push_back(std::move(p));
  }

  std::string out;
  if (a.flag("json")) {
    auto doc = nlohmann::json::object();
    doc["now"] = schedule::format_utc(now);
    auto slots = nlohmann::json::array();
    for (const auto& p : plans) {
      auto runs = nlohmann::json::array();
      for (const auto t : p.runs) {
        runs.push_back(schedule::format_utc(t));
      }
      slots.push_back({ { "slot", p.user->slot() },
                        { "controller", p.user->controller },
                        { "user", p.user->user },
                        { "schedule", p.user->policy.schedule },
                        { "timezone", p.zone->name() },
                        { "jitter_seconds", p.jitter.offset.count() },
                        { "runs", std::move(runs) },
                        { "state", state_json(p.state) } });
    }
    doc["slots"] = std::move(slots);
    out = doc.dump(2) + "\n";
  } else {
    // Formatted straight into `out`, reserved once: 10,000 slots print 3.4 MB, and a
    // temporary string per line cost more than the formatting itself.
    out.reserve(plans.size() * (120 + static_cast<std::size_t>(count) * 60));
    const auto to = std::back_inserter(out);
    fmt::format_to(to, "Next {} runs per slot from {}{}\n", count, schedule::format_utc(now),
                   store ? "" : " (no state read: as if no slot had run yet)");
    for (const auto& p : plans) {
      fmt::format_to(to, "\n{}  schedule \"{}\"  timezone {}  jitter {} of {}\n", p.user->slot(),
                     p.user->policy.schedule, p.zone->name(),
                     util::format_duration(p.jitter.offset), util::format_duration(p.jitter.span));
      if (p.state) {
        fmt::format_to(to, "  {}\n", state_line(*p.state));
      } else if (store) {
        out += "  no token of ours yet: due at the next pass\n";
      }
      for (const auto t : p.runs) {
        fmt::format_to(to, "  {:<28} {}\n", p.zone->format_local(t), schedule::format_utc(t));
      }
    }
  }
  int rc = util::exit_code::k_ok;
  if (a.flag("connect")) {
    // What reconcile and prune would do now; read-only (DESIGN §4).
    PassResult preview;
    if (!store) {
      preview.errors.push_back("no state database yet: nothing of ours to reconcile or prune");
    } else {
      boost::asio::io_context io;
      auto engine = Engine::create(io.get_executor(), *config, *store);
      if (!engine) {
        std::fputs((engine.error().message + "\n").c_str(), stderr);
        return engine.error().kind == "config" ? util::exit_code::k_config
                                               : util::exit_code::k_failure;
      }
      std::exception_ptr failure;
      boost::asio::co_spawn(io, (*engine)->preview(), [&](std::exception_ptr e, PassResult r) {
        failure = e;
        preview = std::move(r);
      });
      io.run();
      if (failure) {
        std::rethrow_exception(failure);
      }
    }
    if (!preview.errors.empty() && store) {
      rc = util::exit_code::k_failure;
    }
    if (a.flag("json")) {
      auto doc = nlohmann::json::parse(out);
      doc["connect"] = { { "actions", preview.preview }, { "errors", preview.errors } };
      out = doc.dump(2) + "\n";
    } else {
      out += "\nReconcile and prune now (read-only: nothing was changed)\n";
      if (preview.preview.empty() && preview.errors.empty()) {
        out += "  nothing to do\n";
      }
      for (const auto& line : preview.preview) {
        out += "  " + line + "\n";
      }
      for (const auto& e : preview.errors) {
        out += "  ERROR: " + e + "\n";
      }
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return rc;
}

} // namespace app
