// What admin_token_rotation keeps: the admin tokens of ours per controller (schema v5).
#include "state/store_detail.hpp"

#include <fmt/core.h>

namespace state {

using namespace detail;

std::string_view
to_string(AdminTokenState state)
{
  switch (state) {
    case AdminTokenState::planned:
      return "planned";
    case AdminTokenState::minted:
      return "minted";
    case AdminTokenState::current:
      return "current";
    case AdminTokenState::previous:
      return "previous";
    case AdminTokenState::bootstrap:
      return "bootstrap";
    case AdminTokenState::revoked:
      return "revoked";
    case AdminTokenState::abandoned:
      return "abandoned";
    case AdminTokenState::failed:
      return "failed";
  }
  return "failed";
}

namespace {

AdminTokenState
admin_state_of(const std::string& text)
{
  for (auto s : { AdminTokenState::planned, AdminTokenState::minted, AdminTokenState::current,
                  AdminTokenState::previous, AdminTokenState::bootstrap, AdminTokenState::revoked,
                  AdminTokenState::abandoned, AdminTokenState::failed }) {
    if (to_string(s) == text) {
      return s;
    }
  }
  return AdminTokenState::failed;
}

#define ADMIN_SELECT                                                                               \
  "SELECT id, controller, seq, name, uuid, sealed, state, created, switched, retire_at "           \
  "FROM admin_tokens "

AdminToken
read_admin(const Statement& s)
{
  AdminToken t;
  t.id = s.int64(0);
  t.controller = s.text(1);
  t.seq = s.optional_int64(2);
  t.name = s.text(3);
  t.uuid = s.optional_text(4);
  t.sealed = s.optional_text(5);
  t.state = admin_state_of(s.text(6));
  t.created = s.time(7);
  t.switched = s.optional_time(8);
  t.retire_at = s.optional_time(9);
  return t;
}

} // namespace

util::Result<void>
Store::admin_planned(std::string_view controller, Seq seq, std::string_view name, Time now)
{
  auto st = m_db->prepare("INSERT INTO admin_tokens (controller, seq, name, state, created) "
                          "VALUES (?1, ?2, ?3, 'planned', ?4)");
  if (!st) {
    return st.error();
  }
  st->bind_all(controller, seq, name, now);
  return st->run();
}

util::Result<void>
Store::admin_minted(Seq seq, std::string_view uuid, std::string_view sealed)
{
  auto st = m_db->prepare("UPDATE admin_tokens SET uuid = ?2, sealed = ?3, state = 'minted' "
                          "WHERE seq = ?1 AND state = 'planned'");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq, uuid, sealed);
  STATE_TRY(st->run());
  if (m_db->changes() != 1) {
    return util::make_error("state", fmt::format("admin token seq {} is not planned", seq));
  }
  return {};
}

util::Result<void>
Store::admin_switch(Seq seq, Time now, std::chrono::seconds grace, bool keep_sealed)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto row =
      m_db->prepare("SELECT controller FROM admin_tokens WHERE seq = ?1 AND state = 'minted'");
    if (!row) {
      return row.error();
    }
    row->bind_all(seq);
    auto controller = read_one<std::string>(*row, [](const Statement& s) { return s.text(0); });
    if (!controller) {
      return controller.error();
    }
    if (!*controller) {
      return util::make_error("state", fmt::format("admin token seq {} is not minted", seq));
    }
    auto old =
      m_db->prepare("UPDATE admin_tokens SET state = 'previous', sealed = NULL, "
                    "retire_at = ?2 WHERE controller = ?1 AND state IN ('current', 'bootstrap')");
    if (!old) {
      return old.error();
    }
    old->bind_all(**controller, now + grace);
    STATE_TRY(old->run());
    auto cur =
      m_db->prepare(keep_sealed ? "UPDATE admin_tokens SET state = 'current', switched = ?2 "
                                  "WHERE seq = ?1"
                                : "UPDATE admin_tokens SET state = 'current', switched = ?2, "
                                  "sealed = NULL WHERE seq = ?1");
    if (!cur) {
      return cur.error();
    }
    cur->bind_all(seq, now);
    return cur->run();
  });
}

util::Result<void>
Store::admin_bootstrap(std::string_view controller, std::string_view uuid, std::string_view name,
                       Time now)
{
  auto st = m_db->prepare(
    "INSERT INTO admin_tokens (controller, name, uuid, state, created) "
    "SELECT ?1, ?3, ?2, 'bootstrap', ?4 "
    "WHERE NOT EXISTS (SELECT 1 FROM admin_tokens WHERE controller = ?1 AND uuid = ?2)");
  if (!st) {
    return st.error();
  }
  st->bind_all(controller, uuid, name, now);
  return st->run();
}

util::Result<void>
Store::admin_close(std::int64_t id, AdminTokenState state, Time now)
{
  if (state != AdminTokenState::revoked && state != AdminTokenState::abandoned &&
      state != AdminTokenState::failed) {
    return util::make_error("state", "admin_close: not a closing state");
  }
  auto st = m_db->prepare("UPDATE admin_tokens SET state = ?2, sealed = NULL, closed_at = ?3 "
                          "WHERE id = ?1 AND state <> 'current'");
  if (!st) {
    return st.error();
  }
  st->bind_all(id, to_string(state), now);
  STATE_TRY(st->run());
  if (m_db->changes() != 1) {
    return util::make_error("state",
                            fmt::format("admin token {} is current or unknown: not closed", id));
  }
  return {};
}

util::Result<std::vector<AdminToken>>
Store::admin_open(std::string_view controller)
{
  auto st = m_db->prepare(ADMIN_SELECT "WHERE controller = ?1 AND state IN ('planned', 'minted', "
                                       "'current', 'previous', 'bootstrap') ORDER BY id");
  if (!st) {
    return st.error();
  }
  st->bind_all(controller);
  return read_all<AdminToken>(*st, read_admin);
}

util::Result<std::optional<AdminToken>>
Store::admin_current(std::string_view controller)
{
  auto st = m_db->prepare(ADMIN_SELECT "WHERE controller = ?1 AND state = 'current'");
  if (!st) {
    return st.error();
  }
  st->bind_all(controller);
  return read_one<AdminToken>(*st, read_admin);
}

} // namespace state
