// Attempts and DESIGN §2.2's state machine, their envelopes and sink results.
#include "state/store_detail.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace state {

using namespace detail;

// --- Attempts ---------------------------------------------------------------------------

util::Result<Attempt>
Store::expect_state(Seq seq, std::initializer_list<AttemptState> allowed, std::string_view action)
{
  auto found = attempt(seq);
  if (!found) {
    return found.error();
  }
  if (!*found) {
    return util::make_error("not_found", fmt::format("{}: no attempt {}", m_path, seq));
  }
  for (const auto s : allowed) {
    if ((*found)->state == s) {
      return std::move(**found);
    }
  }
  std::string expected;
  for (const auto s : allowed) {
    expected += expected.empty() ? "" : " or ";
    expected += to_string(s);
  }
  return util::make_error("state", fmt::format("attempt {} ({}) is {}: cannot {} (expected {})",
                                               seq, (*found)->token_name,
                                               to_string((*found)->state), action, expected));
}

util::Result<void>
Store::set_attempt_state(const Attempt& a, AttemptState state,
                         std::optional<std::string_view> error, Time now)
{
  auto st = m_db->prepare(
    "UPDATE attempts SET state = ?2, error = coalesce(?3, error), updated = ?4 WHERE seq = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(a.seq, to_string(state), error, now);
  STATE_TRY(st->run());
  auto detail = std::string(a.token_name);
  if (error) {
    detail += ": ";
    detail += *error;
  }
  return insert_audit(*m_db, now, a.slot, a.seq, to_string(state), detail);
}

util::Result<void>
Store::create_attempt(Seq seq, SlotId slot, std::string_view token_name, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto highest = highest_seq();
    if (!highest) {
      return highest.error();
    }
    if (seq <= 0 || seq > *highest) {
      return util::make_error(
        "state", fmt::format("{}: seq {} was not handed out by next_seq (highest is {})", m_path,
                             seq, *highest));
    }
    auto st = m_db->prepare("INSERT INTO attempts (seq, slot_id, state, token_name, created, "
                            "updated) VALUES (?1, ?2, 'planned', ?3, ?4, ?4)");
    if (!st) {
      return st.error();
    }
    st->bind_all(seq, slot, token_name, now);
    STATE_TRY(st->run());
    return insert_audit(*m_db, now, slot, seq, "planned", token_name);
  });
}

util::Result<void>
Store::mark_minted(Seq seq, const MintedToken& token, std::span<const Envelope> envelopes, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto a = expect_state(seq, { AttemptState::planned }, "record its mint");
    if (!a) {
      return a.error();
    }
    if (envelopes.empty()) {
      return util::make_error(
        "envelope", fmt::format("attempt {} ({}): no sealed envelope", seq, a->token_name));
    }
    for (const auto& env : envelopes) {
      STATE_TRY(check_envelope(m_check_envelope, env, *a, token));
    }
    auto ins = m_db->prepare(
      "INSERT INTO tokens (uuid, seq, slot_id, created, expires, jenkins_expires, role) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')");
    if (!ins) {
      return ins.error();
    }
    ins->bind_all(token.uuid, seq, a->slot, token.created, token.expires, token.jenkins_expires);
    STATE_TRY(ins->run());
    for (const auto& env : envelopes) {
      auto st = m_db->prepare(
        "INSERT INTO envelopes (seq, sink_index, sink_hash, envelope) VALUES (?1, ?2, ?3, ?4)");
      if (!st) {
        return st.error();
      }
      st->bind_all(seq, env.sink_index, env.sink_hash, env.json);
      STATE_TRY(st->run());
    }
    return set_attempt_state(*a, AttemptState::minted,
                             fmt::format("uuid {}, {} sinks", token.uuid, envelopes.size()), now);
  });
}

util::Result<void>
Store::mark_verified(Seq seq, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto a = expect_state(seq, { AttemptState::minted }, "mark it verified");
    if (!a) {
      return a.error();
    }
    return set_attempt_state(*a, AttemptState::verified, std::nullopt, now);
  });
}

util::Result<void>
Store::record_sink_result(Seq seq, int sink_index, SinkOutcome outcome, std::string_view message,
                          Time now, int tries)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto a =
      expect_state(seq, { AttemptState::verified, AttemptState::delivering }, "record a delivery");
    if (!a) {
      return a.error();
    }
    auto has = m_db->prepare("SELECT 1 FROM envelopes WHERE seq = ?1 AND sink_index = ?2");
    if (!has) {
      return has.error();
    }
    has->bind_all(seq, sink_index);
    auto row = has->step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return util::make_error("not_found", fmt::format("attempt {} ({}): no envelope for sink {}",
                                                       seq, a->token_name, sink_index));
    }
    auto st =
      m_db->prepare("INSERT INTO sink_results (seq, sink_index, outcome, message, tries, updated) "
                    "VALUES (?1, ?2, ?3, ?4, ?6, ?5) ON CONFLICT (seq, sink_index) DO UPDATE SET "
                    "outcome = excluded.outcome, message = excluded.message, "
                    "tries = tries + excluded.tries, updated = excluded.updated");
    if (!st) {
      return st.error();
    }
    st->bind_all(seq, sink_index, to_string(outcome), message, now, std::max(tries, 1));
    STATE_TRY(st->run());
    STATE_TRY(insert_audit(*m_db, now, a->slot, seq, fmt::format("sink_{}", to_string(outcome)),
                           fmt::format("{}: sink {}{}{}", a->token_name, sink_index,
                                       message.empty() ? "" : ": ", message)));
    if (outcome == SinkOutcome::ok && a->state == AttemptState::verified) {
      return set_attempt_state(*a, AttemptState::delivering, std::nullopt, now);
    }
    return {};
  });
}

util::Result<CommitOutcome>
Store::commit_attempt(Seq seq, Time now, std::chrono::seconds grace)
{
  return atomically(*m_db, [&]() -> util::Result<CommitOutcome> {
    auto a = expect_state(seq, { AttemptState::delivering }, "commit it");
    if (!a) {
      return a.error();
    }
    auto count =
      m_db->prepare("SELECT (SELECT count(*) FROM envelopes WHERE seq = ?1), "
                    "(SELECT count(*) FROM sink_results WHERE seq = ?1 AND outcome = 'ok')");
    if (!count) {
      return count.error();
    }
    count->bind_all(seq);
    STATE_TRY(count->step());
    const auto sinks = count->int64(0);
    const auto written = count->int64(1);
    if (written != sinks) {
      return util::make_error("state",
                              fmt::format("attempt {} ({}): {} of {} sinks written: cannot commit",
                                          seq, a->token_name, written, sinks));
    }

    CommitOutcome outcome;
    const Time retire_at = now + grace;
    {
      auto cur = m_db->prepare("SELECT uuid FROM tokens WHERE slot_id = ?1 AND role = 'current'");
      if (!cur) {
        return cur.error();
      }
      cur->bind_all(a->slot);
      auto row = cur->step();
      if (!row) {
        return row.error();
      }
      if (*row) {
        outcome.previous_uuid = cur->text(0);
        outcome.retire_at = retire_at;
      }
    }
    // The old current steps down first: the unique index allows one current per slot.
    auto demote = m_db->prepare("UPDATE tokens SET role = 'previous', retire_at = ?2 "
                                "WHERE slot_id = ?1 AND role = 'current'");
    if (!demote) {
      return demote.error();
    }
    demote->bind_all(a->slot, retire_at);
    STATE_TRY(demote->run());
    auto promote =
      m_db->prepare("UPDATE tokens SET role = 'current' WHERE seq = ?1 AND role = 'pending'");
    if (!promote) {
      return promote.error();
    }
    promote->bind_all(seq);
    STATE_TRY(update_one(*m_db, *promote, [&] {
      return util::make_error("state", fmt::format("attempt {} ({}): its token is no longer "
                                                   "pending (revoked?): cannot commit",
                                                   seq, a->token_name));
    }));

    // Older attempts of the slot still open with a token are superseded. A sink may hold
    // their token, so it retires after grace like a previous one (DESIGN §1.1). Planned
    // ones stay open: they may be lost mints the engine must look for by name.
    auto older =
      m_db->prepare(ATTEMPT_SELECT "WHERE a.slot_id = ?1 AND a.seq < ?2 AND t.uuid IS NOT NULL "
                                   "AND a.state IN ('minted', 'verified', 'delivering') "
                                   "ORDER BY a.seq");
    if (!older) {
      return older.error();
    }
    older->bind_all(a->slot, seq);
    auto superseded = read_all<Attempt>(*older, read_attempt);
    if (!superseded) {
      return superseded.error();
    }
    for (const auto& old : *superseded) {
      auto retire = m_db->prepare("UPDATE tokens SET role = 'previous', retire_at = ?2 "
                                  "WHERE seq = ?1 AND role = 'pending'");
      if (!retire) {
        return retire.error();
      }
      retire->bind_all(old.seq, retire_at);
      STATE_TRY(retire->run());
      STATE_TRY(set_attempt_state(old, AttemptState::abandoned,
                                  fmt::format("superseded by attempt {}", seq), now));
    }

    auto slot_st =
      m_db->prepare("UPDATE slots SET last_rotation = ?2, next_due = NULL, backoff_until = NULL, "
                    "consecutive_failures = 0, degraded = 0, last_error = NULL WHERE id = ?1");
    if (!slot_st) {
      return slot_st.error();
    }
    slot_st->bind_all(a->slot, now);
    STATE_TRY(slot_st->run());
    const auto detail =
      outcome.previous_uuid
        ? fmt::format("previous {} retires at {}", *outcome.previous_uuid, format_time(retire_at))
        : std::string("first token of the slot");
    STATE_TRY(set_attempt_state(*a, AttemptState::committed, detail, now));
    return outcome;
  });
}

util::Result<void>
Store::fail_attempt(Seq seq, std::string_view error, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    // Not from delivering: once a sink holds the token we roll forward (DESIGN §2.2).
    auto a = expect_state(
      seq, { AttemptState::planned, AttemptState::minted, AttemptState::verified }, "fail it");
    if (!a) {
      return a.error();
    }
    auto st = m_db->prepare("UPDATE slots SET consecutive_failures = consecutive_failures + 1, "
                            "last_error = ?2 WHERE id = ?1");
    if (!st) {
      return st.error();
    }
    st->bind_all(a->slot, error);
    STATE_TRY(st->run());
    return set_attempt_state(*a, AttemptState::failed, error, now);
  });
}

util::Result<void>
Store::abandon_attempt(Seq seq, std::string_view outcome, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto a = expect_state(seq, { AttemptState::planned }, "abandon it");
    if (!a) {
      return a.error();
    }
    return set_attempt_state(*a, AttemptState::abandoned, outcome, now);
  });
}

util::Result<std::optional<Attempt>>
Store::attempt(Seq seq)
{
  auto st = m_db->prepare(ATTEMPT_SELECT "WHERE a.seq = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_one<Attempt>(*st, read_attempt);
}

util::Result<std::optional<Attempt>>
Store::attempt_named(std::string_view token_name)
{
  auto st = m_db->prepare(ATTEMPT_SELECT "WHERE a.token_name = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(token_name);
  return read_one<Attempt>(*st, read_attempt);
}

util::Result<std::vector<Attempt>>
Store::attempts_in_state(AttemptState state)
{
  auto st = m_db->prepare(ATTEMPT_SELECT "WHERE a.state = ?1 ORDER BY a.seq");
  if (!st) {
    return st.error();
  }
  st->bind_all(to_string(state));
  return read_all<Attempt>(*st, read_attempt);
}

util::Result<std::vector<Attempt>>
Store::open_attempts()
{
  auto st =
    m_db->prepare(ATTEMPT_SELECT "WHERE a.state IN ('planned', 'minted', 'verified', 'delivering') "
                                 "ORDER BY a.seq");
  if (!st) {
    return st.error();
  }
  return read_all<Attempt>(*st, read_attempt);
}

util::Result<std::vector<Attempt>>
Store::attempts_of_slot(SlotId slot, int limit)
{
  auto st = m_db->prepare(ATTEMPT_SELECT "WHERE a.slot_id = ?1 ORDER BY a.seq DESC LIMIT ?2");
  if (!st) {
    return st.error();
  }
  st->bind_all(slot, limit);
  return read_all<Attempt>(*st, read_attempt);
}

util::Result<std::vector<Envelope>>
Store::envelopes(Seq seq)
{
  auto st = m_db->prepare("SELECT sink_index, sink_hash, envelope FROM envelopes WHERE seq = ?1 "
                          "ORDER BY sink_index");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_all<Envelope>(*st, [](const Statement& s) {
    return Envelope{ static_cast<int>(s.int64(0)), s.text(1), s.text(2) };
  });
}

util::Result<std::vector<SinkResult>>
Store::sink_results(Seq seq)
{
  auto st = m_db->prepare("SELECT sink_index, outcome, message, tries, updated FROM sink_results "
                          "WHERE seq = ?1 ORDER BY sink_index");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_all<SinkResult>(*st, [](const Statement& s) {
    return SinkResult{ static_cast<int>(s.int64(0)),
                       parse_sink_outcome(s.text(1)).value_or(SinkOutcome::retryable), s.text(2),
                       static_cast<int>(s.int64(3)), s.time(4) };
  });
}

} // namespace state
