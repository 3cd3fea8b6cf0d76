// The audit log.
#include "state/store_detail.hpp"

#include <fmt/core.h>

namespace state {

using namespace detail;

// --- Audit ------------------------------------------------------------------------------

util::Result<void>
Store::append_audit(Time time, std::optional<SlotId> slot, std::optional<Seq> seq,
                    std::string_view event, std::string_view detail)
{
  return insert_audit(*m_db, time, slot, seq, event, detail);
}

util::Result<std::vector<AuditEntry>>
Store::audit(std::optional<SlotId> slot, int limit)
{
  auto st = m_db->prepare("SELECT id, time, slot_id, seq, event, detail FROM audit "
                          "WHERE ?1 IS NULL OR slot_id = ?1 ORDER BY id DESC LIMIT ?2");
  if (!st) {
    return st.error();
  }
  st->bind_all(slot, limit);
  return read_all<AuditEntry>(*st, [](const Statement& s) {
    return AuditEntry{ s.int64(0),          s.time(1), s.optional_int64(2),
                       s.optional_int64(3), s.text(4), s.text(5) };
  });
}

util::Result<std::int64_t>
Store::trim_audit(Time older_than)
{
  auto st = m_db->prepare("DELETE FROM audit WHERE time < ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(older_than);
  STATE_TRY(st->run());
  return m_db->changes();
}

} // namespace state
