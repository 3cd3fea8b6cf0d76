// The seq counter and the slots.
#include "state/store_detail.hpp"

#include <fmt/core.h>

namespace state {

using namespace detail;

// --- Sequence ---------------------------------------------------------------------------

util::Result<Seq>
Store::next_seq()
{
  return atomically(*m_db, [&]() -> util::Result<Seq> {
    return query_int(*m_db,
                     "UPDATE instance SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq");
  });
}

util::Result<Seq>
Store::highest_seq()
{
  return query_int(*m_db, "SELECT last_seq FROM instance WHERE id = 1");
}

// --- Slots ------------------------------------------------------------------------------

util::Result<SlotId>
Store::ensure_slot(std::string_view controller, std::string_view user_key,
                   std::string_view user_display)
{
  return atomically(*m_db, [&]() -> util::Result<SlotId> {
    auto st = m_db->prepare(
      "INSERT INTO slots (controller, user_key, user_display) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (controller, user_key) DO UPDATE SET user_display = excluded.user_display "
      "RETURNING id");
    if (!st) {
      return st.error();
    }
    st->bind_all(controller, user_key, user_display);
    auto row = st->step();
    if (!row) {
      return row.error();
    }
    return st->int64(0);
  });
}

util::Result<Slot>
Store::slot(SlotId id)
{
  auto st = m_db->prepare(SLOT_SELECT "WHERE s.id = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(id);
  auto found = read_one<Slot>(*st, read_slot);
  if (!found) {
    return found.error();
  }
  if (!*found) {
    return util::make_error("not_found", fmt::format("{}: no slot with id {}", m_path, id));
  }
  return std::move(**found);
}

util::Result<std::optional<Slot>>
Store::find_slot(std::string_view controller, std::string_view user_key)
{
  auto st = m_db->prepare(SLOT_SELECT "WHERE s.controller = ?1 AND s.user_key = ?2");
  if (!st) {
    return st.error();
  }
  st->bind_all(controller, user_key);
  return read_one<Slot>(*st, read_slot);
}

util::Result<std::vector<Slot>>
Store::slots()
{
  auto st = m_db->prepare(SLOT_SELECT "ORDER BY s.id");
  if (!st) {
    return st.error();
  }
  return read_all<Slot>(*st, read_slot);
}

util::Result<std::vector<Slot>>
Store::degraded_slots()
{
  auto st = m_db->prepare(SLOT_SELECT "WHERE s.degraded = 1 ORDER BY s.id");
  if (!st) {
    return st.error();
  }
  return read_all<Slot>(*st, read_slot);
}

util::Result<void>
Store::set_backoff(SlotId id, std::optional<Time> until)
{
  auto st = m_db->prepare("UPDATE slots SET backoff_until = ?2 WHERE id = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(id, until);
  return update_one(*m_db, *st, [&] {
    return util::make_error("not_found", fmt::format("{}: no slot with id {}", m_path, id));
  });
}

util::Result<void>
Store::set_next_due(SlotId id, std::optional<Time> when)
{
  auto st = m_db->prepare("UPDATE slots SET next_due = ?2 WHERE id = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(id, when);
  return update_one(*m_db, *st, [&] {
    return util::make_error("not_found", fmt::format("{}: no slot with id {}", m_path, id));
  });
}

util::Result<void>
Store::set_degraded(SlotId id, bool degraded, std::string_view reason, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto current = slot(id);
    if (!current) {
      return current.error();
    }
    if (current->degraded == degraded) {
      return {};
    }
    auto st = m_db->prepare(
      "UPDATE slots SET degraded = ?2, last_error = CASE WHEN ?2 THEN ?3 ELSE last_error END "
      "WHERE id = ?1");
    if (!st) {
      return st.error();
    }
    st->bind_all(id, degraded ? 1 : 0, reason);
    STATE_TRY(st->run());
    return insert_audit(*m_db, now, id, std::nullopt, degraded ? "degraded" : "recovered", reason);
  });
}

} // namespace state
