#include "config/schedule_rules.hpp"

#include "schedule/schedule.hpp"
#include "util/duration.hpp"

#include <fmt/core.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

namespace config {

namespace {

// One error per place and text: a bad value in `defaults:` shared by 10,000 users is
// reported once, at the first user, with a count of the others.
class Grouped
{
public:
  void add(const Mark& mark, std::string path, std::string message)
  {
    const auto key = std::tuple(mark.file.str(), mark.line, mark.column, message);
    if (const auto it = m_index.find(key); it != m_index.end()) {
      ++m_entries[it->second].others;
      return;
    }
    m_index.emplace(key, m_entries.size());
    m_entries.push_back(Entry{ mark, std::move(path), std::move(message), 0 });
  }

  void report(Diagnostics& diagnostics) const
  {
    for (const auto& e : m_entries) {
      diagnostics.add(e.mark, e.path,
                      e.others == 0 ? e.message
                                    : fmt::format("{} (and {} other user{})", e.message, e.others,
                                                  e.others == 1 ? "" : "s"));
    }
  }

private:
  struct Entry
  {
    Mark mark;
    std::string path;
    std::string message;
    std::size_t others;
  };
  std::map<std::tuple<std::string, int, int, std::string>, std::size_t> m_index;
  std::vector<Entry> m_entries;
};

} // namespace

void
check_schedules(Config& config, Diagnostics& diagnostics)
{
  // Users share a few schedules and zones: parse each once, and compute each gap once.
  // The parsed forms are kept in each Policy: nobody parses them again.
  std::map<std::string, util::Result<std::shared_ptr<const schedule::Schedule>>> schedules;
  std::map<std::string, util::Result<schedule::Zone>> zones;
  std::map<std::pair<std::string, std::string>, std::chrono::seconds> gaps;
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const auto parse_schedule = [&](const std::string& text) {
    auto s = schedules.find(text);
    if (s == schedules.end()) {
      auto parsed = schedule::Schedule::parse(text);
      if (parsed) {
        s = schedules.emplace(text, std::make_shared<const schedule::Schedule>(std::move(*parsed)))
              .first;
      } else {
        s = schedules.emplace(text, parsed.error()).first;
      }
    }
    return s;
  };
  const auto locate_zone = [&](const std::string& name) {
    auto z = zones.find(name);
    if (z == zones.end()) {
      z = zones.emplace(name, schedule::Zone::locate(name)).first;
    }
    return z;
  };
  Grouped errors;
  for (std::size_t i = 0; i < config.users.size(); ++i) {
    User& u = config.users[i];
    Policy& p = u.policy;
    // The key path is spelled out only for an error: 10,000 users usually have none.
    const auto path = [i](const char* key) { return fmt::format("users[{}].{}", i, key); };
    const auto s = parse_schedule(p.schedule);
    const auto z = locate_zone(p.timezone);
    if (!s->second) {
      errors.add(u.schedule_mark, path("schedule"), s->second.error().message);
    }
    if (!z->second) {
      errors.add(u.timezone_mark, path("timezone"), z->second.error().message);
    }
    if (!s->second || !z->second) {
      continue;
    }
    p.parsed_schedule = *s->second;
    p.zone = *z->second;
    const auto key = std::pair(p.schedule, p.timezone);
    auto g = gaps.find(key);
    if (g == gaps.end()) {
      g = gaps.emplace(key, schedule::longest_gap(**s->second, *z->second, now)).first;
    }
    const auto needed = g->second + p.grace + p.failure_budget;
    if (p.lifetime < needed) {
      errors.add(u.lifetime_mark, path("lifetime"),
                 fmt::format("expected at least {} (longest gap {} + grace {} + failure_budget "
                             "{}), found {}",
                             util::format_duration(needed), util::format_duration(g->second),
                             util::format_duration(p.grace),
                             util::format_duration(p.failure_budget),
                             util::format_duration(p.lifetime)));
    }
  }
  // admin_token_rotation: the same rules, named by the controller's key path.
  for (std::size_t i = 0; i < config.controllers.size(); ++i) {
    auto& ctl = config.controllers[i];
    if (!ctl.admin_token_rotation) {
      continue;
    }
    auto a = *ctl.admin_token_rotation;
    const auto path = [i](const char* key) {
      return fmt::format("controllers[{}].admin_token_rotation.{}", i, key);
    };
    const auto s = parse_schedule(a.policy.schedule);
    const auto z = locate_zone(a.policy.timezone);
    if (!s->second) {
      errors.add(a.schedule_mark, path("schedule"), s->second.error().message);
    }
    if (!z->second) {
      errors.add(a.timezone_mark, path("timezone"), z->second.error().message);
    }
    if (!s->second || !z->second) {
      continue;
    }
    a.policy.parsed_schedule = *s->second;
    a.policy.zone = *z->second;
    const auto gap = schedule::longest_gap(**s->second, *z->second, now);
    const auto needed = gap + a.policy.grace + a.policy.failure_budget;
    if (a.policy.lifetime < needed) {
      errors.add(a.lifetime_mark, path("lifetime"),
                 fmt::format("expected at least {} (longest gap {} + grace {} + failure_budget "
                             "{}), found {}",
                             util::format_duration(needed), util::format_duration(gap),
                             util::format_duration(a.policy.grace),
                             util::format_duration(a.policy.failure_budget),
                             util::format_duration(a.policy.lifetime)));
    }
    ctl.admin_token_rotation = std::make_shared<const AdminTokenRotation>(std::move(a));
  }
  // The defaults are checked where users inherit them; unused, they are only kept.
  if (const auto s = parse_schedule(config.defaults.schedule); s->second) {
    config.defaults.parsed_schedule = *s->second;
  }
  if (const auto z = locate_zone(config.defaults.timezone); z->second) {
    config.defaults.zone = *z->second;
  }
  errors.report(diagnostics);
}

} // namespace config
