// What `auth: self` keeps: sealed token values per attempt and the slots to sweep.
#include "state/store_detail.hpp"

namespace state {

using namespace detail;

util::Result<void>
Store::put_self_secret(Seq seq, std::string_view sealed)
{
  auto st = m_db->prepare("INSERT OR REPLACE INTO self_secrets (seq, sealed) VALUES (?1, ?2)");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq, sealed);
  return st->run();
}

util::Result<std::optional<std::string>>
Store::self_secret(Seq seq)
{
  auto st = m_db->prepare("SELECT sealed FROM self_secrets WHERE seq = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_one<std::string>(*st, [](const Statement& s) { return s.text(0); });
}

util::Result<void>
Store::drop_self_secret(Seq seq)
{
  auto st = m_db->prepare("DELETE FROM self_secrets WHERE seq = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return st->run();
}

util::Result<void>
Store::add_self_sweep(SlotId slot, Time not_before, std::string_view reason)
{
  auto st = m_db->prepare(
    "INSERT INTO self_sweeps (slot_id, not_before, reason) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (slot_id) DO UPDATE SET not_before = max(not_before, excluded.not_before), "
    "reason = excluded.reason");
  if (!st) {
    return st.error();
  }
  st->bind_all(slot, not_before, reason);
  return st->run();
}

util::Result<std::vector<SelfSweep>>
Store::self_sweeps()
{
  auto st = m_db->prepare("SELECT slot_id, not_before, reason FROM self_sweeps ORDER BY slot_id");
  if (!st) {
    return st.error();
  }
  return read_all<SelfSweep>(*st, [](const Statement& s) {
    return SelfSweep{ s.int64(0), s.time(1), s.text(2) };
  });
}

util::Result<void>
Store::clear_self_sweep(SlotId slot)
{
  auto st = m_db->prepare("DELETE FROM self_sweeps WHERE slot_id = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(slot);
  return st->run();
}

} // namespace state
