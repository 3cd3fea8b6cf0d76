// Tokens: lookups, what to prune, revocations.
#include "state/store_detail.hpp"

#include <fmt/core.h>

namespace state {

using namespace detail;

// --- Tokens -----------------------------------------------------------------------------

util::Result<std::optional<Token>>
Store::token(std::string_view uuid)
{
  auto st = m_db->prepare(TOKEN_SELECT "WHERE t.uuid = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(uuid);
  return read_one<Token>(*st, read_token);
}

util::Result<std::optional<Token>>
Store::token_by_seq(Seq seq)
{
  auto st = m_db->prepare(TOKEN_SELECT "WHERE t.seq = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_one<Token>(*st, read_token);
}

util::Result<std::vector<Token>>
Store::live_tokens(SlotId slot)
{
  auto st =
    m_db->prepare(TOKEN_SELECT "WHERE t.slot_id = ?1 AND t.role != 'revoked' ORDER BY t.seq DESC");
  if (!st) {
    return st.error();
  }
  st->bind_all(slot);
  return read_all<Token>(*st, read_token);
}

util::Result<std::vector<Token>>
Store::current_tokens()
{
  auto st = m_db->prepare(TOKEN_SELECT "WHERE t.role = 'current' ORDER BY t.slot_id");
  if (!st) {
    return st.error();
  }
  return read_all<Token>(*st, read_token);
}

util::Result<std::vector<PruneCandidate>>
Store::tokens_to_prune(Time now)
{
  auto st = m_db->prepare(TOKEN_SELECT
                          "WHERE t.role IN ('previous', 'pending') "
                          "AND a.state NOT IN ('planned', 'minted', 'verified', 'delivering') "
                          "AND ((t.role = 'previous' AND t.retire_at <= ?1) OR t.expires <= ?1 "
                          "     OR (t.role = 'pending' AND a.state = 'failed')) "
                          "ORDER BY t.seq");
  if (!st) {
    return st.error();
  }
  st->bind_all(now);
  return read_all<PruneCandidate>(*st, [now](const Statement& s) {
    PruneCandidate c{ read_token(s), PruneReason::expired };
    if (c.token.role == TokenRole::previous && c.token.retire_at && *c.token.retire_at <= now) {
      c.reason = PruneReason::retired;
    } else if (c.token.expires <= now) {
      c.reason = PruneReason::expired;
    } else {
      c.reason = PruneReason::failed_mint;
    }
    return c;
  });
}

util::Result<void>
Store::mark_revoked(std::string_view uuid, Time when)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto t = token(uuid);
    if (!t) {
      return t.error();
    }
    if (!*t) {
      return util::make_error("not_found", fmt::format("{}: no token {} of ours", m_path, uuid));
    }
    const auto& tok = **t;
    if (tok.role == TokenRole::revoked) {
      return {};
    }
    if (tok.role == TokenRole::current) {
      return util::make_error(
        "state", fmt::format("token {} ({}) is the current token of {}/{}: not revoked", uuid,
                             tok.name, tok.controller, tok.user_display));
    }
    auto st = m_db->prepare("UPDATE tokens SET role = 'revoked', revoked_at = ?2 WHERE uuid = ?1");
    if (!st) {
      return st.error();
    }
    st->bind_all(uuid, when);
    STATE_TRY(st->run());
    return insert_audit(*m_db, when, tok.slot, tok.seq, "revoked",
                        fmt::format("{} ({}), was {}", tok.name, uuid, to_string(tok.role)));
  });
}

util::Result<void>
Store::mark_current_gone(std::string_view uuid, Time when)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto t = token(uuid);
    if (!t) {
      return t.error();
    }
    if (!*t || (*t)->role != TokenRole::current) {
      return util::make_error("state",
                              fmt::format("{}: token {} is not a current token", m_path, uuid));
    }
    auto st = m_db->prepare("UPDATE tokens SET role = 'revoked', revoked_at = ?2 WHERE uuid = ?1");
    if (!st) {
      return st.error();
    }
    st->bind_all(uuid, when);
    STATE_TRY(st->run());
    STATE_TRY(set_next_due((*t)->slot, when));
    return insert_audit(
      *m_db, when, (*t)->slot, (*t)->seq, "current_gone",
      fmt::format("{} ({}) vanished from Jenkins; slot due now", (*t)->name, uuid));
  });
}

} // namespace state
