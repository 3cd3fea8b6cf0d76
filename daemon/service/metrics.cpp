#include "service/metrics.hpp"

#include "config/config.hpp"
#include "crypto/secret_bytes.hpp"
#include "state/store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <utility>

namespace service {

namespace {

// Seconds: a request deadline is 30 s by default, and a hung step ends there.
constexpr std::array<double, 12> k_request_bounds{ 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                   0.5,   1,    2.5,   5,    10,  30 };
// A pass of 10,000 users over a slow link takes minutes (tests/bench/full-pass).
constexpr std::array<double, 12> k_pass_bounds{ 0.1, 0.5, 1,   5,   10,   30,
                                                60,  120, 300, 600, 1800, 3600 };

enum class Type
{
  gauge,
  counter,
  histogram
};

struct FamilyInfo
{
  std::string_view name;
  Type type;
  std::string_view help;
};

enum FamilyId : std::size_t
{
  f_build_info,
  f_last_success,
  f_next_rotation,
  f_expiry,
  f_jenkins_expiry,
  f_failure_budget,
  f_consecutive_failures,
  f_slot_state,
  f_rotations,
  f_controller_up,
  f_stale_database,
  f_requests,
  f_request_duration,
  f_revoked,
  f_revoke_failures,
  f_sinks,
  f_pass_duration,
  f_reload_ok,
  f_reload_time,
  f_lock_failures,
  f_admin_token_age,
  f_admin_token_rotations,
  f_count
};

constexpr std::array<FamilyInfo, f_count> k_families{ {
  { "jtr_build_info", Type::gauge, "Always 1; the version of the running daemon." },
  { "jtr_slot_last_success_timestamp_seconds", Type::gauge,
    "When the slot's last rotation committed (every sink holds its token)." },
  { "jtr_slot_next_rotation_timestamp_seconds", Type::gauge,
    "When the daemon will next rotate the slot (schedule, jitter, backoff)." },
  { "jtr_slot_token_expiry_timestamp_seconds", Type::gauge,
    "The daemon's deadline of the slot's current token (created + lifetime)." },
  { "jtr_slot_jenkins_token_expiry_timestamp_seconds", Type::gauge,
    "When Jenkins expires the slot's current token; absent where Jenkins has no expiry." },
  { "jtr_slot_failure_budget_seconds", Type::gauge,
    "The slot's failure_budget: how long before expiry a failing rotation must be fixed." },
  { "jtr_slot_consecutive_failures", Type::gauge,
    "Failed rotation attempts of the slot since its last commit." },
  { "jtr_slot_state", Type::gauge,
    "1 for the slot's state (ok, new, degraded, failing, backoff)." },
  { "jtr_rotations_total", Type::counter, "Rotation attempts by controller and result." },
  { "jtr_controller_up", Type::gauge,
    "1 when the controller answered in the last pass, 0 when it could not be reached." },
  { "jtr_controller_stale_database", Type::gauge,
    "1 when Jenkins holds a token of ours newer than the state database knows." },
  { "jtr_jenkins_requests_total", Type::counter,
    "Requests to Jenkins by controller, operation and status class (none: no answer)." },
  { "jtr_jenkins_request_duration_seconds", Type::histogram,
    "Time of a request to Jenkins, retries included, by controller and operation." },
  { "jtr_tokens_revoked_total", Type::counter, "Tokens revoked in Jenkins by reason." },
  { "jtr_token_revoke_failures_total", Type::counter,
    "Revocations that failed by reason (retried in a later pass)." },
  { "jtr_sink_deliveries_total", Type::counter,
    "Envelope deliveries to sinks by sink type and result." },
  { "jtr_pass_duration_seconds", Type::histogram, "Time of one pass by kind." },
  { "jtr_config_last_reload_successful", Type::gauge,
    "1 when the last config load or reload was accepted, 0 when it was rejected." },
  { "jtr_config_last_reload_timestamp_seconds", Type::gauge,
    "When the config was last loaded or a reload was attempted." },
  { "jtr_secret_memory_lock_failures_total", Type::counter,
    "Secret buffers that could not be locked in memory (they may reach swap)." },
  { "jtr_admin_token_age_seconds", Type::gauge,
    "Seconds since the controller's current admin token became current (admin_token_rotation)." },
  { "jtr_admin_token_rotations_total", Type::counter,
    "Rotations of the controller's own admin token by result (rotated, failed, lost)." },
} };

constexpr std::array<std::string_view, Metrics::k_results> k_result_words{
  "committed", "delivering", "failed", "abandoned", "not_due", "error"
};
constexpr std::array<std::string_view, Metrics::k_classes> k_class_words{ "none", "1xx", "2xx",
                                                                          "3xx",  "4xx", "5xx",
                                                                          "other" };
constexpr std::array<std::string_view, Metrics::k_kinds> k_kind_words{ "full", "rotate", "prune",
                                                                       "preview" };
constexpr std::array<config::SinkType, Metrics::k_types> k_sink_types{ config::SinkType::file,
                                                                       config::SinkType::exec,
                                                                       config::SinkType::http };
constexpr std::array<state::SinkOutcome, Metrics::k_outcomes> k_sink_outcomes{
  state::SinkOutcome::ok, state::SinkOutcome::retryable, state::SinkOutcome::rejected
};

std::size_t
status_class(int status)
{
  if (status == 0) {
    return 0;
  }
  if (status >= 100 && status < 600) {
    return static_cast<std::size_t>(status / 100);
  }
  return 6;
}

using config::slot_key;

void
append_int(std::string& out, std::int64_t value)
{
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec; // 24 bytes hold every int64
  out.append(buf, end);
}

void
append_double(std::string& out, double value)
{
  fmt::format_to(std::back_inserter(out), "{}", value);
}

// HELP text escapes backslash and line feed only (format 0.0.4).
void
append_header(std::string& out, const FamilyInfo& family)
{
  out.append("# HELP ").append(family.name).push_back(' ');
  for (char c : family.help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  out.append("\n# TYPE ").append(family.name).push_back(' ');
  switch (family.type) {
    case Type::gauge:
      out.append("gauge\n");
      break;
    case Type::counter:
      out.append("counter\n");
      break;
    case Type::histogram:
      out.append("histogram\n");
      break;
  }
}

// name{labels} value\n; `labels` already escaped, may be empty.
void
append_sample(std::string& out, std::string_view name, std::string_view labels, std::int64_t value)
{
  out.append(name);
  if (!labels.empty()) {
    out.push_back('{');
    out.append(labels);
    out.push_back('}');
  }
  out.push_back(' ');
  append_int(out, value);
  out.push_back('\n');
}

template<std::size_t N>
void
observe(std::optional<Metrics::Histogram>& slot, const std::array<double, N>& bounds, double v)
{
  if (!slot) {
    slot.emplace();
    slot->buckets.assign(N + 1, 0);
  }
  auto it = std::lower_bound(bounds.begin(), bounds.end(), v); // le: v <= bound
  slot->buckets[static_cast<std::size_t>(it - bounds.begin())] += 1;
  slot->sum += v;
  slot->count += 1;
}

template<std::size_t N>
void
append_histogram(std::string& out, std::string_view name, std::string_view labels,
                 const Metrics::Histogram& h, const std::array<double, N>& bounds)
{
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= N; ++i) {
    cumulative += h.buckets[i];
    out.append(name).append("_bucket{").append(labels);
    if (!labels.empty()) {
      out.push_back(',');
    }
    out.append("le=\"");
    if (i < N) {
      append_double(out, bounds[i]);
    } else {
      out.append("+Inf");
    }
    out.append("\"} ");
    append_int(out, static_cast<std::int64_t>(cumulative));
    out.push_back('\n');
  }
  out.append(name).append("_sum");
  if (!labels.empty()) {
    out.append("{").append(labels).append("}");
  }
  out.push_back(' ');
  append_double(out, h.sum);
  out.push_back('\n');
  out.append(name).append("_count");
  if (!labels.empty()) {
    out.append("{").append(labels).append("}");
  }
  out.push_back(' ');
  append_int(out, static_cast<std::int64_t>(h.count));
  out.push_back('\n');
}

std::int64_t
seconds(Time t)
{
  return t.time_since_epoch().count();
}

} // namespace

void
append_label_value(std::string& out, std::string_view value)
{
  for (char c : value) {
    switch (c) {
      case '\\':
        out.append("\\\\");
        break;
      case '"':
        out.append("\\\"");
        break;
      case '\n':
        out.append("\\n");
        break;
      default:
        out.push_back(c);
    }
  }
}

std::string_view
to_string(SlotState state)
{
  switch (state) {
    case SlotState::ok:
      return "ok";
    case SlotState::fresh:
      return "new";
    case SlotState::degraded:
      return "degraded";
    case SlotState::failing:
      return "failing";
    case SlotState::backoff:
      return "backoff";
  }
  return "ok";
}

SlotState
slot_state(const std::optional<state::Slot>& row, Time now)
{
  if (!row) {
    return SlotState::fresh;
  }
  if (row->degraded) {
    return SlotState::degraded;
  }
  if (row->backoff_until && *row->backoff_until > now) {
    return SlotState::backoff;
  }
  if (row->consecutive_failures > 0) {
    return SlotState::failing;
  }
  if (!row->current_uuid && !row->last_rotation) {
    return SlotState::fresh;
  }
  return SlotState::ok;
}

std::shared_ptr<Metrics>
Metrics::create(Options options)
{
  return std::make_shared<Metrics>(std::move(options));
}

Metrics::Metrics(Options options)
  : m_options(std::move(options))
{
  if (m_options.clock == nullptr) {
    m_options.clock = &util::system_clock();
  }
  m_build_labels = "version=\"";
  append_label_value(m_build_labels, m_options.version);
  m_build_labels.push_back('"');
}

std::size_t
Metrics::family_count()
{
  return f_count;
}

Metrics::ControllerEntry&
Metrics::controller(std::string_view name)
{
  for (auto& c : m_controllers) {
    if (c.name == name) {
      return c;
    }
  }
  auto& c = m_controllers.emplace_back();
  c.name = std::string(name);
  c.labels = "controller=\"";
  append_label_value(c.labels, name);
  c.labels.push_back('"');
  // A controller we hear of that the config does not name (one removed while a pass ran)
  // goes at the next configure().
  c.configured = false;
  return c;
}

void
Metrics::apply_retain(const config::Config& config)
{
  // Controllers: keep the counters of those still configured, in config order.
  std::vector<ControllerEntry> controllers;
  controllers.reserve(config.controllers.size());
  for (const auto& cc : config.controllers) {
    auto it = std::find_if(m_controllers.begin(), m_controllers.end(),
                           [&](const ControllerEntry& e) { return e.name == cc.name; });
    if (it != m_controllers.end()) {
      controllers.push_back(std::move(*it));
    } else {
      auto& c = controllers.emplace_back();
      c.name = cc.name;
      c.labels = "controller=\"";
      append_label_value(c.labels, cc.name);
      c.labels.push_back('"');
    }
    controllers.back().configured = true;
  }
  m_controllers = std::move(controllers);

  // Slots: mark those the config dropped; append the new ones.
  ++m_generation;
  std::unordered_map<std::string, std::size_t> wanted;
  wanted.reserve(config.users.size());
  for (std::size_t i = 0; i < config.users.size(); ++i) {
    wanted.emplace(slot_key(config.users[i].controller, config.users[i].user), i);
  }
  for (auto& [key, index] : m_slot_index) {
    if (!wanted.contains(key) && m_slots[index].removed == 0) {
      m_slots[index].removed = m_generation;
    }
  }
  for (const auto& u : config.users) {
    auto key = slot_key(u.controller, u.user);
    auto found = m_slot_index.find(key);
    if (found != m_slot_index.end()) {
      auto& entry = m_slots[found->second];
      entry.removed = 0; // dropped and named again before a running scrape ended
      entry.facts.failure_budget = u.policy.failure_budget;
      entry.user = u.user; // the same slot may be spelt in another case
      continue;
    }
    auto& entry = m_slots.emplace_back();
    entry.controller = u.controller;
    entry.user = u.user;
    entry.facts.failure_budget = u.policy.failure_budget;
    m_slot_index.emplace(std::move(key), m_slots.size() - 1);
  }
  if (m_active_scrapes == 0) {
    compact();
  } else {
    m_compact_pending = true;
  }
}

void
Metrics::compact()
{
  m_compact_pending = false;
  auto removed = [](const SlotEntry& e) { return e.removed != 0; };
  if (std::none_of(m_slots.begin(), m_slots.end(), removed)) {
    return;
  }
  std::erase_if(m_slots, removed);
  m_slot_index.clear();
  m_slot_index.reserve(m_slots.size());
  for (std::size_t i = 0; i < m_slots.size(); ++i) {
    m_slot_index.emplace(slot_key(m_slots[i].controller, m_slots[i].user), i);
  }
}

util::Result<void>
Metrics::configure(std::shared_ptr<const config::Config> config)
{
  m_config = std::move(config);
  apply_retain(*m_config);
  return refresh();
}

util::Result<void>
Metrics::refresh()
{
  if (m_options.store == nullptr || !m_config) {
    return {};
  }
  auto rows = m_options.store->slots();
  if (!rows) {
    return rows.error();
  }
  auto tokens = m_options.store->current_tokens();
  if (!tokens) {
    return tokens.error();
  }
  std::unordered_map<std::string, const state::Slot*> by_key;
  by_key.reserve(rows->size());
  for (const auto& row : *rows) {
    std::string key = row.controller;
    key.push_back('\n');
    key.append(row.user_key);
    by_key.emplace(std::move(key), &row);
  }
  std::unordered_map<state::SlotId, const state::Token*> current;
  current.reserve(tokens->size());
  for (const auto& t : *tokens) {
    current.emplace(t.slot, &t);
  }
  auto now = m_options.clock->now();
  std::unordered_map<std::string, Time> due;
  if (!m_options.next_due && m_options.all_due) {
    for (auto& [slot, at] : m_options.all_due(now)) {
      due.emplace(std::move(slot), at);
    }
  }
  for (const auto& c : m_config->controllers) {
    if (!c.admin_token_rotation) {
      continue;
    }
    if (auto admin = m_options.store->admin_current(c.name); admin && *admin) {
      controller(c.name).admin_since = (*admin)->switched.value_or((*admin)->created);
    }
  }
  for (const auto& u : m_config->users) {
    auto index = m_slot_index.find(slot_key(u.controller, u.user));
    if (index == m_slot_index.end()) {
      continue;
    }
    auto& facts = m_slots[index->second].facts;
    std::optional<state::Slot> row;
    if (auto r = by_key.find(index->first); r != by_key.end()) {
      row = *r->second;
    }
    facts = SlotFacts{};
    facts.failure_budget = u.policy.failure_budget;
    facts.state = slot_state(row, now);
    if (row) {
      facts.last_success = row->last_rotation;
      facts.consecutive_failures = row->consecutive_failures;
      if (auto t = current.find(row->id); t != current.end()) {
        facts.expires = t->second->expires;
        facts.jenkins_expires = t->second->jenkins_expires;
      }
    }
    if (m_options.next_due) {
      facts.next_rotation = m_options.next_due(u, row, now);
    } else if (auto d = due.find(u.slot()); d != due.end()) {
      facts.next_rotation = d->second;
    }
  }
  return {};
}

bool
Metrics::set_slot(std::string_view controller, std::string_view user, const SlotFacts& facts)
{
  auto index = m_slot_index.find(slot_key(controller, user));
  if (index == m_slot_index.end() || m_slots[index->second].removed != 0) {
    return false;
  }
  m_slots[index->second].facts = facts;
  return true;
}

void
Metrics::reload_result(bool ok, Time at)
{
  m_reload_ok = ok;
  m_reload_at = at;
}

void
Metrics::on_slot(const rotation::SlotReport& report)
{
  auto result = static_cast<std::size_t>(report.result);
  if (result < k_results) {
    controller(report.controller).rotations[result] += 1;
  }
}

void
Metrics::on_sink(const std::string& /*controller*/, const std::string& /*user*/,
                 config::SinkType type, state::SinkOutcome outcome)
{
  auto t = static_cast<std::size_t>(type);
  auto o = static_cast<std::size_t>(outcome);
  if (t < k_types && o < k_outcomes) {
    m_sinks[t][o] += 1;
  }
}

void
Metrics::on_revoke(const std::string& controller_name, const std::string& /*user*/,
                   rotation::RevokeReason reason, bool ok)
{
  auto r = static_cast<std::size_t>(reason);
  if (r < k_reasons) {
    controller(controller_name).revoked[r][ok ? 1 : 0] += 1;
  }
}

void
Metrics::on_admin_token(const std::string& controller_name, rotation::AdminTokenResult result)
{
  auto r = static_cast<std::size_t>(result);
  if (r < k_admin_results) {
    controller(controller_name).admin_rotations[r] += 1;
  }
}

void
Metrics::on_admin_token_age(const std::string& controller_name, Time since)
{
  controller(controller_name).admin_since = since;
}

void
Metrics::on_request(const std::string& controller_name, rotation::RequestOp op, int http_status,
                    std::chrono::milliseconds took)
{
  auto o = static_cast<std::size_t>(op);
  if (o >= k_ops) {
    return;
  }
  auto& c = controller(controller_name);
  c.requests[o][status_class(http_status)] += 1;
  observe(c.durations[o], k_request_bounds, static_cast<double>(took.count()) / 1000.0);
}

void
Metrics::on_controller(const std::string& controller_name, bool reachable, bool stale_database)
{
  auto& c = controller(controller_name);
  c.up = reachable;
  c.stale_database = stale_database;
}

void
Metrics::on_pass(const rotation::PassRequest& request, const rotation::PassResult& result)
{
  auto k = static_cast<std::size_t>(request.kind);
  if (k < k_kinds) {
    observe(m_passes[k], k_pass_bounds, static_cast<double>(result.duration.count()) / 1000.0);
  }
  if (request.kind != rotation::PassKind::preview) {
    // The metrics stay readable when the store is not: the error shows in the pass itself.
    (void)refresh();
  }
}

// --- Rendering -------------------------------------------------------------------------

void
Metrics::render_family(std::size_t family, std::size_t& item, const Scrape& scrape,
                       std::string& out, std::size_t limit)
{
  const auto& info = k_families[family];
  if (item == 0) {
    append_header(out, info);
    item = 1;
  }
  auto name = info.name;
  // The slot families: resumable at any slot (item k is slot k-1).
  if (family >= f_last_success && family <= f_slot_state) {
    std::string labels; // controller="…",user="…": built here, not kept per slot
    for (; item - 1 < scrape.m_slot_end; ++item) {
      if (out.size() >= limit) {
        return;
      }
      const auto& s = m_slots[item - 1];
      if (s.removed != 0 && s.removed <= scrape.m_generation) {
        continue;
      }
      labels.assign("controller=\"");
      append_label_value(labels, s.controller);
      labels.append("\",user=\"");
      append_label_value(labels, s.user);
      labels.push_back('"');
      const auto& f = s.facts;
      switch (family) {
        case f_last_success:
          if (f.last_success) {
            append_sample(out, name, labels, seconds(*f.last_success));
          }
          break;
        case f_next_rotation:
          if (f.next_rotation) {
            append_sample(out, name, labels, seconds(*f.next_rotation));
          }
          break;
        case f_expiry:
          if (f.expires) {
            append_sample(out, name, labels, seconds(*f.expires));
          }
          break;
        case f_jenkins_expiry:
          if (f.jenkins_expires) {
            append_sample(out, name, labels, seconds(*f.jenkins_expires));
          }
          break;
        case f_failure_budget:
          append_sample(out, name, labels, f.failure_budget.count());
          break;
        case f_consecutive_failures:
          append_sample(out, name, labels, f.consecutive_failures);
          break;
        case f_slot_state:
          out.append(name).push_back('{');
          out.append(labels).append(",state=\"").append(to_string(f.state)).append("\"} 1\n");
          break;
        default:
          break;
      }
    }
    item = 0;
    return;
  }

  // The other families are small (per controller, or one line): rendered whole.
  std::string labels;
  switch (family) {
    case f_build_info:
      append_sample(out, name, m_build_labels, 1);
      break;
    case f_rotations:
      for (const auto& c : m_controllers) {
        for (std::size_t r = 0; r < k_results; ++r) {
          labels.assign(c.labels).append(",result=\"").append(k_result_words[r]).append("\"");
          append_sample(out, name, labels, static_cast<std::int64_t>(c.rotations[r]));
        }
      }
      break;
    case f_admin_token_age:
      for (const auto& c : m_controllers) {
        if (c.admin_since) {
          append_sample(
            out, name, c.labels,
            std::max<std::int64_t>(0, seconds(m_options.clock->now()) - seconds(*c.admin_since)));
        }
      }
      break;
    case f_admin_token_rotations:
      for (const auto& c : m_controllers) {
        const auto* cc = m_config ? m_config->find_controller(c.name) : nullptr;
        if (cc == nullptr || !cc->admin_token_rotation) {
          continue;
        }
        for (std::size_t r = 0; r < k_admin_results; ++r) {
          labels.assign(c.labels)
            .append(",result=\"")
            .append(rotation::to_string(static_cast<rotation::AdminTokenResult>(r)))
            .append("\"");
          append_sample(out, name, labels, static_cast<std::int64_t>(c.admin_rotations[r]));
        }
      }
      break;
    case f_controller_up:
    case f_stale_database:
      for (const auto& c : m_controllers) {
        const auto& v = family == f_controller_up ? c.up : c.stale_database;
        if (v) {
          append_sample(out, name, c.labels, *v ? 1 : 0);
        }
      }
      break;
    case f_requests:
      for (const auto& c : m_controllers) {
        for (std::size_t o = 0; o < k_ops; ++o) {
          for (std::size_t k = 0; k < k_classes; ++k) {
            if (c.requests[o][k] == 0) {
              continue;
            }
            labels.assign(c.labels)
              .append(",operation=\"")
              .append(rotation::to_string(static_cast<rotation::RequestOp>(o)))
              .append("\",status_class=\"")
              .append(k_class_words[k])
              .append("\"");
            append_sample(out, name, labels, static_cast<std::int64_t>(c.requests[o][k]));
          }
        }
      }
      break;
    case f_request_duration:
      for (const auto& c : m_controllers) {
        for (std::size_t o = 0; o < k_ops; ++o) {
          if (c.durations[o]) {
            labels.assign(c.labels)
              .append(",operation=\"")
              .append(rotation::to_string(static_cast<rotation::RequestOp>(o)))
              .append("\"");
            append_histogram(out, name, labels, *c.durations[o], k_request_bounds);
          }
        }
      }
      break;
    case f_revoked:
    case f_revoke_failures:
      for (const auto& c : m_controllers) {
        for (std::size_t r = 0; r < k_reasons; ++r) {
          labels.assign(c.labels)
            .append(",reason=\"")
            .append(rotation::to_string(static_cast<rotation::RevokeReason>(r)))
            .append("\"");
          append_sample(out, name, labels,
                        static_cast<std::int64_t>(c.revoked[r][family == f_revoked ? 1 : 0]));
        }
      }
      break;
    case f_sinks:
      for (std::size_t t = 0; t < k_types; ++t) {
        for (std::size_t o = 0; o < k_outcomes; ++o) {
          labels.assign("type=\"")
            .append(config::to_string(k_sink_types[t]))
            .append("\",result=\"")
            .append(state::to_string(k_sink_outcomes[o]))
            .append("\"");
          append_sample(out, name, labels, static_cast<std::int64_t>(m_sinks[t][o]));
        }
      }
      break;
    case f_pass_duration:
      for (std::size_t k = 0; k < k_kinds; ++k) {
        if (m_passes[k]) {
          labels.assign("kind=\"").append(k_kind_words[k]).append("\"");
          append_histogram(out, name, labels, *m_passes[k], k_pass_bounds);
        }
      }
      break;
    case f_reload_ok:
      if (m_reload_ok) {
        append_sample(out, name, {}, *m_reload_ok ? 1 : 0);
      }
      break;
    case f_reload_time:
      if (m_reload_at) {
        append_sample(out, name, {}, seconds(*m_reload_at));
      }
      break;
    case f_lock_failures:
      append_sample(out, name, {}, static_cast<std::int64_t>(crypto::lock_failures()));
      break;
    default:
      break;
  }
  item = 0;
}

Metrics::Scrape::Scrape(std::shared_ptr<Metrics> metrics)
  : m_metrics(std::move(metrics))
  , m_slot_end(m_metrics->m_slots.size())
  , m_generation(m_metrics->m_generation)
{
  m_metrics->m_active_scrapes += 1;
}

Metrics::Scrape::~Scrape()
{
  m_metrics->m_active_scrapes -= 1;
  if (m_metrics->m_active_scrapes == 0 && m_metrics->m_compact_pending) {
    m_metrics->compact();
  }
}

bool
Metrics::Scrape::next(std::string& out, std::size_t chunk)
{
  auto limit = chunk > SIZE_MAX - out.size() ? SIZE_MAX : out.size() + chunk;
  while (m_family < f_count) {
    m_metrics->render_family(m_family, m_item, *this, out, limit);
    if (m_item != 0) {
      return true; // the chunk is full in the middle of a slot family
    }
    ++m_family;
    if (out.size() >= limit) {
      return m_family < f_count;
    }
  }
  return false;
}

std::unique_ptr<Metrics::Scrape>
Metrics::scrape()
{
  return std::make_unique<Scrape>(shared_from_this());
}

std::function<bool(std::string& out)>
Metrics::pieces()
{
  // std::function wants a copyable callable: the scrape is shared by the copies.
  return [scrape = std::shared_ptr<Scrape>(this->scrape())](std::string& out) {
    return scrape->next(out);
  };
}

std::string
Metrics::render()
{
  // About 90 bytes per slot and family: one reservation for the whole text.
  std::string text;
  text.reserve(4096 + m_slots.size() * 7 * 96 + m_controllers.size() * 8192);
  Scrape s(shared_from_this());
  while (s.next(text, SIZE_MAX)) {
  }
  return text;
}

} // namespace service
