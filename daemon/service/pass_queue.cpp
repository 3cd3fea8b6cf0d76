#include "service/pass_queue.hpp"

#include <algorithm>

namespace service {

int
PassQueue::add(const std::string& lane, const Ask& ask)
{
  auto& l = m_lanes[lane];
  auto& p = l.pending;
  bool queued = false;
  bool on_running = false;
  switch (ask.kind) {
    case Ask::Kind::resume:
      p.resume = true;
      queued = true;
      break;
    case Ask::Kind::full:
      p.full = true;
      queued = true;
      break;
    case Ask::Kind::prune:
      p.prune = true;
      queued = true;
      break;
    case Ask::Kind::rotate:
      if (ask.force) {
        if (l.running && l.running->force) {
          on_running = true;
        } else {
          p.force = true;
          p.if_due.clear(); // forced covers them
          queued = true;
        }
      }
      for (const auto& s : ask.slots) {
        if (ask.if_due) {
          // In flight in any form, or already queued: nothing to add.
          if (l.running && (l.running->forces(s) || l.running->if_due.count(s) > 0)) {
            on_running = true;
          } else if (!p.force && p.slots.count(s) == 0) {
            p.if_due.insert(s);
            queued = true;
          } else {
            queued = true;
          }
        } else if (l.running && l.running->forces(s)) {
          on_running = true; // waits for the attempt in flight
        } else if (!ask.force) {
          // A scheduled run in flight may find the slot no longer due: this ask forces, so
          // it is queued, not folded into that pass.
          p.slots.insert(s);
          p.if_due.erase(s);
          queued = true;
        }
      }
      break;
  }
  if (!ask.waiter) {
    return 0;
  }
  if (queued) {
    p.waiters.emplace_back(*ask.waiter, ask.kind);
  }
  if (on_running) {
    l.running->waiters.push_back(*ask.waiter);
  }
  return (queued ? 1 : 0) + (on_running ? 1 : 0);
}

std::optional<rotation::PassRequest>
PassQueue::start(const std::string& lane)
{
  const auto it = m_lanes.find(lane);
  if (it == m_lanes.end() || it->second.running || it->second.pending.empty()) {
    return std::nullopt;
  }
  auto& p = it->second.pending;
  Running r;
  r.request.controller = lane;
  // Which pending waiters this pass serves.
  auto take = [&](std::initializer_list<Ask::Kind> kinds) {
    auto& w = p.waiters;
    for (auto i = w.begin(); i != w.end();) {
      if (std::find(kinds.begin(), kinds.end(), i->second) != kinds.end()) {
        r.waiters.push_back(i->first);
        i = w.erase(i);
      } else {
        ++i;
      }
    }
  };
  if (p.resume) {
    // Resume only: a rotate pass naming nothing.
    r.request.kind = rotation::PassKind::rotate;
    p.resume = false;
    take({ Ask::Kind::resume });
  } else if (p.force || !p.slots.empty() || !p.if_due.empty()) {
    r.request.kind = rotation::PassKind::rotate;
    r.request.force = p.force;
    r.force = p.force;
    if (!p.force) {
      r.request.slots.assign(p.slots.begin(), p.slots.end());
      r.request.if_due.assign(p.if_due.begin(), p.if_due.end());
      r.slots = std::move(p.slots);
      r.if_due = std::move(p.if_due);
    }
    p.force = false;
    p.slots.clear();
    p.if_due.clear();
    take({ Ask::Kind::rotate });
  } else if (p.full) {
    r.request.kind = rotation::PassKind::full;
    p.full = false;
    p.prune = false; // a full pass prunes
    take({ Ask::Kind::full, Ask::Kind::prune });
  } else {
    r.request.kind = rotation::PassKind::prune;
    p.prune = false;
    take({ Ask::Kind::prune });
  }
  auto request = r.request;
  it->second.running = std::move(r);
  return request;
}

std::vector<WaiterId>
PassQueue::finish(const std::string& lane)
{
  const auto it = m_lanes.find(lane);
  if (it == m_lanes.end() || !it->second.running) {
    return {};
  }
  auto waiters = std::move(it->second.running->waiters);
  it->second.running.reset();
  return waiters;
}

bool
PassQueue::running(const std::string& lane) const
{
  const auto it = m_lanes.find(lane);
  return it != m_lanes.end() && it->second.running.has_value();
}

bool
PassQueue::pending(const std::string& lane) const
{
  const auto it = m_lanes.find(lane);
  return it != m_lanes.end() && !it->second.pending.empty();
}

bool
PassQueue::all_idle() const
{
  return std::none_of(m_lanes.begin(), m_lanes.end(),
                      [](const auto& l) { return l.second.running.has_value(); });
}

std::vector<std::string>
PassQueue::running_lanes() const
{
  std::vector<std::string> out;
  for (const auto& [name, l] : m_lanes) {
    if (l.running) {
      out.push_back(name);
    }
  }
  return out;
}

bool
PassQueue::has(const std::string& lane, const std::string& slot) const
{
  const auto it = m_lanes.find(lane);
  if (it == m_lanes.end()) {
    return false;
  }
  const auto& l = it->second;
  return l.pending.force || l.pending.slots.count(slot) > 0 || l.pending.if_due.count(slot) > 0 ||
         (l.running && (l.running->forces(slot) || l.running->if_due.count(slot) > 0));
}

std::vector<WaiterId>
PassQueue::drop_pending()
{
  std::vector<WaiterId> out;
  for (auto& [name, l] : m_lanes) {
    for (const auto& w : l.pending.waiters) {
      out.push_back(w.first);
    }
    l.pending = Pending{};
  }
  return out;
}

std::vector<WaiterId>
PassQueue::drop_lane(const std::string& lane)
{
  std::vector<WaiterId> out;
  const auto it = m_lanes.find(lane);
  if (it == m_lanes.end() || it->second.running) {
    return out;
  }
  for (const auto& w : it->second.pending.waiters) {
    out.push_back(w.first);
  }
  m_lanes.erase(it);
  return out;
}

std::vector<std::string>
PassQueue::lanes() const
{
  std::vector<std::string> out;
  for (const auto& [name, l] : m_lanes) {
    out.push_back(name);
  }
  return out;
}

} // namespace service
