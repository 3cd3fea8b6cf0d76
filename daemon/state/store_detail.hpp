#pragma once

// Shared by the store's translation units (store_*.cpp): one job each, DESIGN §9's
// `state::Store` API in store.hpp. Not for use outside state/.

#include "state/database.hpp"
#include "state/statement.hpp"
#include "state/store.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

// Propagates the error of an expression returning util::Result<...>.
#define STATE_TRY(expr)                                                                            \
  do {                                                                                             \
    if (auto state_try_r = (expr); !state_try_r) {                                                 \
      return state_try_r.error();                                                                  \
    }                                                                                              \
  } while (false)

// SELECT prefixes shared by the queries that return whole records; the current token is
// joined rather than stored twice.
#define SLOT_SELECT                                                                                \
  "SELECT s.id, s.controller, s.user_key, s.user_display, t.uuid, s.last_rotation, "               \
  "s.next_due, s.backoff_until, s.consecutive_failures, s.degraded, s.last_error "                 \
  "FROM slots s LEFT JOIN tokens t ON t.slot_id = s.id AND t.role = 'current' "
#define ATTEMPT_SELECT                                                                             \
  "SELECT a.seq, a.slot_id, a.state, a.token_name, t.uuid, a.error, a.created, a.updated "         \
  "FROM attempts a LEFT JOIN tokens t ON t.seq = a.seq "
#define TOKEN_SELECT                                                                               \
  "SELECT t.uuid, a.token_name, t.seq, t.slot_id, s.controller, s.user_display, t.created, "       \
  "t.expires, t.jenkins_expires, t.role, t.retire_at, t.revoked_at "                               \
  "FROM tokens t JOIN attempts a ON a.seq = t.seq JOIN slots s ON s.id = t.slot_id "

namespace state::detail {

Slot read_slot(const Statement& st);
Attempt read_attempt(const Statement& st);
Token read_token(const Statement& st);

// Reads every row of a bound statement with `read`.
template<typename T, typename Read>
util::Result<std::vector<T>>
read_all(Statement& st, Read read)
{
  std::vector<T> rows;
  for (;;) {
    auto row = st.step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return rows;
    }
    rows.push_back(read(st));
  }
}

template<typename T, typename Read>
util::Result<std::optional<T>>
read_one(Statement& st, Read read)
{
  auto row = st.step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return std::optional<T>();
  }
  return std::optional<T>(read(st));
}

// "2026-11-27T03:00:12Z".
std::string format_time(Time t);

// The integer answer of a one-row query.
util::Result<std::int64_t> query_int(Database& db, const char* sql);

// Runs `body` atomically: inside a savepoint, which nests in the caller's transaction or,
// without one, is a transaction of its own.
template<typename F>
auto
atomically(Database& db, F&& body) -> decltype(body())
{
  if (auto r = db.exec("SAVEPOINT jtr_call"); !r) {
    return r.error();
  }
  auto result = body();
  if (!result) {
    (void)db.exec("ROLLBACK TO jtr_call; RELEASE jtr_call");
    return result;
  }
  if (auto r = db.exec("RELEASE jtr_call"); !r) {
    (void)db.exec("ROLLBACK TO jtr_call; RELEASE jtr_call");
    return r.error();
  }
  return result;
}

util::Result<void> insert_audit(Database& db, Time time, std::optional<SlotId> slot,
                                std::optional<Seq> seq, std::string_view event,
                                std::string_view detail);

// Runs a bound UPDATE that must change exactly one row; otherwise `missing` is the error.
util::Result<void> update_one(Database& db, Statement& st,
                              const std::function<util::Error()>& missing);

// Checks that `env` is a sealed DESIGN §6 envelope of this token (store_envelope.cpp).
util::Result<void> check_envelope(const EnvelopeCheck& check, const Envelope& env,
                                  const Attempt& attempt, const MintedToken& token);

} // namespace state::detail
