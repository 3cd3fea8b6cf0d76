// admin_token_rotation (docs/admin-token-rotation.md): the daemon rotates the admin token it
// authenticates with, per controller, at the start of each pass of its lane.
//
// intent (admin_tokens `planned`, committed) -> mint as the current admin -> value sealed to
// the state key and persisted (`minted`) -> /whoAmI and the probe script with the new token
// -> [store: file: admin_token_file replaced atomically] -> `current` (the old one `previous`
// with retire_at = now + grace) -> the live client switches -> revoked after grace.
// A crash anywhere leaves the old token working until the switch is committed, and the new one
// persisted (sealed, or in the file) from before its first use.
#include "rotation/admin_token.hpp"

#include "crypto/state_key.hpp"
#include "rotation/engine.hpp"
#include "rotation/pass_impl.hpp"
#include "rotation/token_name.hpp"
#include "schedule/jitter.hpp"
#include "schedule/schedule.hpp"
#include "util/atomic_file.hpp"
#include "util/crash_point.hpp"
#include "util/duration.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

namespace rotation {

namespace asio = boost::asio;

std::string
admin_token_slot(const std::string& controller)
{
  return controller + "/" + std::string(k_admin_token_user);
}

Time
admin_next_due(const config::Controller& controller,
               const std::optional<state::AdminToken>& current, Time now)
{
  const auto& a = controller.admin_token_rotation;
  if (!a || !current || !current->switched) {
    return now; // never rotated: the bootstrap token's age is unknown
  }
  const auto jitter =
    schedule::Jitter::for_slot(admin_token_slot(controller.name), a->policy.jitter);
  if (a->policy.parsed_schedule && a->policy.zone) {
    if (auto next = schedule::next_run(*a->policy.parsed_schedule, *a->policy.zone, jitter,
                                       *current->switched, now)) {
      return *next;
    }
  }
  return Time::max();
}

util::Result<void>
load_admin_credential(const config::Controller& controller, state::Store& store,
                      const crypto::StateKey* key, jenkins::Api& api)
{
  if (controller.auth != config::Auth::admin) {
    return {};
  }
  auto current = store.admin_current(controller.name);
  if (!current) {
    return current.error();
  }
  // No current row: admin_token_file (the bootstrap). store: file keeps no sealed value: the
  // file holds the current token.
  if (!*current || !(*current)->sealed) {
    return {};
  }
  if (!controller.admin_token_rotation) {
    // admin_token_rotation was removed: admin_token_file holds a token revoked since, so the
    // daemon keeps the state's (no longer rotated) rather than lock itself out.
    util::log::warning("controller {}: no admin_token_rotation, but the state holds the current "
                       "admin token {}: using it (it is no longer rotated)",
                       controller.name, (*current)->name);
  }
  if (key == nullptr) {
    return util::make_error("config", fmt::format("controller {}: the state "
                                                  "holds a sealed admin token but no state key is "
                                                  "loaded",
                                                  controller.name));
  }
  auto token = key->open(*(*current)->sealed);
  if (!token) {
    return util::make_error(
      "config", fmt::format("controller {}: the current admin token {} does not open "
                            "with the state key {}: {}",
                            controller.name, (*current)->name, key->path(), token.error().message));
  }
  return api.set_admin_token(*token);
}

namespace detail {

namespace {

using state::AdminToken;
using state::AdminTokenState;

} // namespace

bool
Pass::admin_token_due(const Lane& lane)
{
  const auto& c = *lane.controller->config;
  auto current = store().admin_current(c.name);
  if (!current) {
    return false;
  }
  // `once --force` / `rotate --all`: every slot of the lane, and its admin token.
  const bool asked = m_request.force && m_request.slots.empty();
  return asked || admin_next_due(c, *current, now()) <= now();
}

void
Pass::admin_error(Lane& lane, const std::string& message)
{
  util::log::error("controller {}: admin token: {}", lane.name(), message);
  lane.errors.push_back(fmt::format("controller {}: admin token: {}", lane.name(), message));
}

void
Pass::admin_result(Lane& lane, AdminTokenResult result)
{
  if (m_observer) {
    m_observer->on_admin_token(lane.name(), result);
  }
}

asio::awaitable<void>
Pass::admin_token(Lane& lane)
{
  const auto& c = *lane.controller->config;
  if (!c.admin_token_rotation || c.auth != config::Auth::admin || m_dry_run) {
    co_return;
  }
  if (!m_core.state_key) {
    admin_error(lane, "no state key loaded");
    co_return;
  }
  auto rows = store().admin_open(c.name);
  if (!rows) {
    admin_error(lane, rows.error().message);
    co_return;
  }
  const bool open = std::any_of(rows->begin(), rows->end(), [](const AdminToken& t) {
    return t.state == AdminTokenState::planned || t.state == AdminTokenState::minted;
  });
  const bool retire = std::any_of(rows->begin(), rows->end(), [&](const AdminToken& t) {
    return t.state == AdminTokenState::previous && t.retire_at && *t.retire_at <= now();
  });
  const bool due = admin_token_due(lane);
  if (!open && !retire && !due) {
    co_await report_admin_age(lane);
    co_return;
  }
  if (!co_await ensure_probed(lane)) {
    co_return; // the probe's error is the lane's
  }
  // 1. Settle what a previous process left (DESIGN §2.2 "Resume after restart").
  for (const auto& t : *rows) {
    if (stopping()) {
      co_return;
    }
    if (t.state == AdminTokenState::planned) {
      co_await admin_settle_lost(lane, t);
    } else if (t.state == AdminTokenState::minted) {
      auto value = m_core.state_key->open(t.sealed.value_or(""));
      if (!value) {
        admin_error(lane, fmt::format("{}: the sealed value does not open: {}", t.name,
                                      value.error().message));
        continue;
      }
      co_await admin_finish(lane, t, *value);
    }
  }
  // 2. Rotate when due.
  if (!stopping() && admin_token_due(lane)) {
    co_await admin_rotate(lane);
  }
  // 3. Revoke what is past its grace.
  if (!stopping()) {
    co_await admin_retire(lane);
  }
  co_await report_admin_age(lane);
}

asio::awaitable<void>
Pass::report_admin_age(Lane& lane)
{
  if (m_observer == nullptr) {
    co_return;
  }
  if (auto current = store().admin_current(lane.name()); current && *current) {
    m_observer->on_admin_token_age(lane.name(), (*current)->switched.value_or((*current)->created));
  }
  co_return;
}

// The bootstrap token (admin_token_file) before the first mint: its uuid, proven by the hash
// Jenkins stores, so it can be revoked after grace. Never a guess: no match, or several, and
// it is left alone (and said so).
asio::awaitable<void>
Pass::admin_identify_bootstrap(Lane& lane)
{
  const auto& c = *lane.controller->config;
  auto rows = store().admin_open(c.name);
  if (!rows) {
    admin_error(lane, rows.error().message);
    co_return;
  }
  const bool known = std::any_of(rows->begin(), rows->end(), [](const AdminToken& t) {
    return t.state == AdminTokenState::current || t.state == AdminTokenState::bootstrap;
  });
  if (known) {
    co_return;
  }
  auto file = net::read_token_file(c.admin_token_file);
  if (!file) {
    admin_error(lane, fmt::format("admin_token_file {}", file.error().message));
    co_return;
  }
  const auto start = std::chrono::steady_clock::now();
  auto found = co_await lane.controller->api->find_token(c.admin_user, jenkins::token_hash(*file));
  observe_request(lane, RequestOp::list, found ? 200 : found.error().status, start);
  if (!found) {
    util::log::warning("controller {}: cannot identify the token in admin_token_file: {}; it "
                       "will not be revoked",
                       c.name, found.error().message);
    co_return;
  }
  if (found->size() != 1) {
    util::log::warning("controller {}: the token in admin_token_file matches {} tokens of {}; it "
                       "will not be revoked after the rotation: revoke it by hand",
                       c.name, found->size(), c.admin_user);
    co_return;
  }
  const auto& m = found->front();
  if (!check(lane, store().admin_bootstrap(c.name, m.uuid, m.name, now()), "admin bootstrap")) {
    co_return;
  }
  audit(
    nullptr, std::nullopt, "admin_bootstrap",
    fmt::format("controller {}: admin_token_file is token {} (\"{}\")", c.name, m.uuid, m.name));
}

asio::awaitable<void>
Pass::admin_rotate(Lane& lane)
{
  const auto& c = *lane.controller->config;
  const auto& a = *c.admin_token_rotation;
  co_await admin_identify_bootstrap(lane);
  // The intent, committed before the mint: a lost answer is found by this name.
  auto tx = begin(lane, "admin token intent");
  auto seq = store().next_seq();
  if (!seq) {
    admin_error(lane, seq.error().message);
    co_return;
  }
  auto name = make_token_name(a.policy.token_prefix, store().instance_id(), store().name_key(),
                              c.name, config::fold_user_id(c.admin_user), *seq);
  if (!name) {
    admin_error(lane, name.error().message);
    co_return;
  }
  if (!check(lane, store().admin_planned(c.name, *seq, *name, now()), "admin token intent") ||
      !commit(lane, tx, "admin token intent")) {
    co_return;
  }
  util::crash_point("admin_token_planned");
  std::vector<jenkins::MintItem> items;
  items.push_back(jenkins::MintItem{ c.admin_user, *name, a.policy.lifetime });
  auto answer = co_await mint(lane, std::move(items));
  const auto planned =
    AdminToken{ 0, c.name, *seq, *name, {}, {}, AdminTokenState::planned, now(), {}, {} };
  if (!answer) {
    const auto& f = answer.error();
    util::log::warning("controller {}: admin token mint: {}; looking {} up", c.name, f.message,
                       *name);
    admin_result(lane, AdminTokenResult::lost);
    co_await admin_settle_lost(lane, planned);
    co_return;
  }
  auto& item = answer->items.front();
  if (!item.minted) {
    // The script answered for the item: no token was made.
    admin_error(lane, fmt::format("mint {}: {}", *name,
                                  item.error ? item.error->message : std::string("no answer")));
    admin_result(lane, AdminTokenResult::failed);
    co_await admin_settle_lost(lane, planned);
    co_return;
  }
  util::crash_point("admin_token_mint_answer");
  // Sealed and persisted before any use (DESIGN §1.2).
  auto sealed = m_core.state_key->seal(item.minted->token);
  if (!sealed) {
    admin_error(lane, fmt::format("seal {}: {}", *name, sealed.error().message));
    co_await admin_revoke_row(lane, c.admin_user, item.minted->uuid, RevokeReason::failed_attempt);
    co_return;
  }
  if (!check(lane, store().admin_minted(*seq, item.minted->uuid, *sealed), "admin token minted")) {
    co_return; // planned stays: the next pass finds it by name and revokes it
  }
  audit(nullptr, *seq, "admin_minted", fmt::format("controller {}: {}", c.name, *name));
  util::crash_point("admin_token_minted");
  auto row = admin_row(lane, *seq);
  if (!row) {
    co_return;
  }
  co_await admin_finish(lane, *row, item.minted->token);
}

asio::awaitable<void>
Pass::admin_finish(Lane& lane, const AdminToken& row, const crypto::SecretBytes& token)
{
  const auto& c = *lane.controller->config;
  const auto& a = *c.admin_token_rotation;
  // As admin: /whoAmI names the admin user, and the probe script (Overall/Administer) runs.
  auto who = co_await verify(lane, c.admin_user, token);
  std::optional<net::Failure> refused;
  if (who) {
    const auto start = std::chrono::steady_clock::now();
    auto probed = co_await lane.controller->api->probe_as(c.admin_user, token);
    observe_request(lane, RequestOp::probe, probed ? 200 : probed.error().status, start);
    if (!probed) {
      refused = probed.error();
    } else if (!probed->administer) {
      refused = net::Failure{ net::FailureKind::forbidden, 403, "the new token lacks Administer" };
    }
  } else {
    refused = who.error();
  }
  if (refused) {
    const bool definite = refused->kind == net::FailureKind::auth ||
                          refused->kind == net::FailureKind::forbidden ||
                          refused->kind == net::FailureKind::bad_output;
    admin_error(lane, fmt::format("{}: not usable as admin: {}", row.name, refused->message));
    admin_result(lane, AdminTokenResult::failed);
    if (definite && row.uuid) {
      // Never used, never in the file: revoke it with the old (still current) token.
      if (co_await admin_revoke_row(lane, c.admin_user, *row.uuid, RevokeReason::failed_attempt)) {
        check(lane, store().admin_close(row.id, AdminTokenState::failed, now()),
              "admin token failed");
      }
    }
    co_return; // otherwise (network) it stays minted: the next pass tries again
  }
  util::crash_point("admin_token_verified");
  if (a.store == config::AdminTokenStore::file) {
    // The file is the token's home from now on; a crash before the commit below leaves it
    // holding the new token (valid) and the row minted: the next pass switches again.
    if (auto w = util::write_file_atomically(
          c.admin_token_file,
          std::string_view(reinterpret_cast<const char*>(token.data()), token.size()));
        !w) {
      admin_error(lane, fmt::format("store: file: {}", w.error().message));
      admin_result(lane, AdminTokenResult::failed);
      co_return;
    }
    util::crash_point("admin_token_file_written");
  }
  if (!row.seq || !check(lane,
                         store().admin_switch(*row.seq, now(), a.policy.grace,
                                              a.store == config::AdminTokenStore::state),
                         "admin token switch")) {
    co_return;
  }
  audit(nullptr, row.seq, "admin_switched",
        fmt::format("controller {}: {} is the admin token; the previous one retires in {}", c.name,
                    row.name, util::format_duration(a.policy.grace)));
  util::crash_point("admin_token_switched");
  if (auto s = lane.controller->api->set_admin_token(token); !s) {
    admin_error(lane, s.error().message);
    co_return;
  }
  util::log::info("controller {}: admin token rotated: {} (store: {})", c.name, row.name,
                  config::to_string(a.store));
  admin_result(lane, AdminTokenResult::rotated);
}

asio::awaitable<void>
Pass::admin_settle_lost(Lane& lane, const AdminToken& row)
{
  const auto& c = *lane.controller->config;
  std::vector<std::string> users;
  users.push_back(c.admin_user);
  auto listed = co_await list(lane, std::move(users));
  if (!listed || listed->users.empty() || listed->users.front().error) {
    admin_error(lane, fmt::format("{}: cannot list {}'s tokens to settle a lost mint; left for "
                                  "the next pass",
                                  row.name, c.admin_user));
    co_return;
  }
  bool revoked_all = true;
  for (const auto& t : listed->users.front().tokens) {
    if (t.name == row.name) {
      revoked_all =
        co_await admin_revoke_row(lane, c.admin_user, t.uuid, RevokeReason::lost_mint) &&
        revoked_all;
    }
  }
  if (!revoked_all || !row.seq) {
    co_return;
  }
  if (auto t = admin_row(lane, *row.seq)) {
    check(lane, store().admin_close(t->id, AdminTokenState::abandoned, now()),
          "admin token abandoned");
    audit(nullptr, row.seq, "admin_abandoned",
          fmt::format("controller {}: {}: lost mint settled by name", c.name, row.name));
  }
}

std::optional<state::AdminToken>
Pass::admin_row(Lane& lane, state::Seq seq)
{
  auto rows = store().admin_open(lane.name());
  if (!rows) {
    admin_error(lane, rows.error().message);
    return std::nullopt;
  }
  for (auto& t : *rows) {
    if (t.seq == seq) {
      return std::move(t);
    }
  }
  return std::nullopt;
}

asio::awaitable<bool>
Pass::admin_revoke_row(Lane& lane, const std::string& user, const std::string& uuid,
                       RevokeReason reason)
{
  const auto start = std::chrono::steady_clock::now();
  std::vector<jenkins::RevokeItem> items;
  items.push_back(jenkins::RevokeItem{ user, uuid });
  auto r = co_await lane.controller->api->revoke(*lane.variant, std::move(items));
  observe_request(lane, RequestOp::revoke, r ? 200 : r.error().status, start);
  const bool ok =
    r && !r->items.empty() && r->items.front().outcome != jenkins::RevokeOutcome::failed;
  if (m_observer) {
    m_observer->on_revoke(lane.name(), user, reason, ok);
  }
  if (!ok) {
    admin_error(lane, fmt::format("revoke {}: {}", uuid,
                                  !r ? r.error().message
                                     : (r->items.empty() || !r->items.front().error
                                          ? std::string("no answer")
                                          : r->items.front().error->message)));
  }
  co_return ok;
}

asio::awaitable<void>
Pass::admin_retire(Lane& lane)
{
  const auto& c = *lane.controller->config;
  auto rows = store().admin_open(c.name);
  if (!rows) {
    admin_error(lane, rows.error().message);
    co_return;
  }
  for (const auto& t : *rows) {
    if (t.state != AdminTokenState::previous || !t.retire_at || *t.retire_at > now() || !t.uuid) {
      continue;
    }
    if (co_await admin_revoke_row(lane, c.admin_user, *t.uuid, RevokeReason::superseded)) {
      util::crash_point("admin_token_retired");
      check(lane, store().admin_close(t.id, AdminTokenState::revoked, now()),
            "admin token revoked");
      audit(nullptr, t.seq, "admin_revoked",
            fmt::format("controller {}: {} ({}) past its grace", c.name, t.name, *t.uuid));
    }
  }
}

} // namespace detail

} // namespace rotation
