#include "state/store_detail.hpp"

#include <date/date.h>
#include <fmt/core.h>

namespace state::detail {

Slot
read_slot(const Statement& st)
{
  Slot s;
  s.id = st.int64(0);
  s.controller = st.text(1);
  s.user_key = st.text(2);
  s.user_display = st.text(3);
  s.current_uuid = st.optional_text(4);
  s.last_rotation = st.optional_time(5);
  s.next_due = st.optional_time(6);
  s.backoff_until = st.optional_time(7);
  s.consecutive_failures = static_cast<int>(st.int64(8));
  s.degraded = st.int64(9) != 0;
  s.last_error = st.optional_text(10);
  return s;
}

Attempt
read_attempt(const Statement& st)
{
  Attempt a;
  a.seq = st.int64(0);
  a.slot = st.int64(1);
  // The CHECK constraint admits only known names.
  a.state = parse_attempt_state(st.text(2)).value_or(AttemptState::failed);
  a.token_name = st.text(3);
  a.token_uuid = st.optional_text(4);
  a.error = st.optional_text(5);
  a.created = st.time(6);
  a.updated = st.time(7);
  return a;
}

Token
read_token(const Statement& st)
{
  Token t;
  t.uuid = st.text(0);
  t.name = st.text(1);
  t.seq = st.int64(2);
  t.slot = st.int64(3);
  t.controller = st.text(4);
  t.user_display = st.text(5);
  t.created = st.time(6);
  t.expires = st.time(7);
  t.jenkins_expires = st.optional_time(8);
  t.role = parse_token_role(st.text(9)).value_or(TokenRole::revoked);
  t.retire_at = st.optional_time(10);
  t.revoked_at = st.optional_time(11);
  return t;
}

std::string
format_time(Time t)
{
  return date::format("%FT%TZ", t);
}

util::Result<std::int64_t>
query_int(Database& db, const char* sql)
{
  auto st = db.prepare(sql);
  if (!st) {
    return st.error();
  }
  auto row = st->step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return util::make_error("db", fmt::format("{}: no answer to {}", db.path(), sql));
  }
  return st->int64(0);
}

util::Result<void>
insert_audit(Database& db, Time time, std::optional<SlotId> slot, std::optional<Seq> seq,
             std::string_view event, std::string_view detail)
{
  auto st =
    db.prepare("INSERT INTO audit (time, slot_id, seq, event, detail) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!st) {
    return st.error();
  }
  st->bind_all(time, slot, seq, event, detail);
  return st->run();
}

util::Result<void>
update_one(Database& db, Statement& st, const std::function<util::Error()>& missing)
{
  STATE_TRY(st.run());
  if (db.changes() != 1) {
    return missing();
  }
  return {};
}

} // namespace state::detail
