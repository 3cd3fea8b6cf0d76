// auth: self (docs/self-rotation.md): the REST path, as each user with its own current
// token. No admin credential and no script: probe by /whoAmI, mint by addFixedToken with a
// value chosen and persisted (sealed to the state key) before the call, verify by /whoAmI,
// revoke by uuid, and sweep the tokens whose uuid was never learnt (the bootstrap token, a
// lost mint) with revokeAllExcept(current) once no other token of the slot must live.
#include "crypto/state_key.hpp"
#include "rotation/pass_impl.hpp"
#include "util/crash_point.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

#include <chrono>

namespace rotation::detail {

namespace asio = boost::asio;

namespace {

// Jenkins keeps a token through its expiration day in its own zone, which REST does not
// tell. The day D after which it may die is chosen so that D's end is after `deadline` in
// every zone (UTC-12 … UTC+14): D = the UTC day of deadline + 14 h. The instant returned is
// the earliest end of D (in UTC+14), what the envelope states as jenkins_expires.
struct ExpiryDay
{
  std::string day;      // yyyy-MM-dd
  std::string earliest; // RFC 3339, +14:00
  std::int64_t earliest_ms = 0;
};

ExpiryDay
expiry_day(state::Time deadline)
{
  using namespace std::chrono;
  const auto d = floor<days>(deadline + hours(14));
  const year_month_day ymd{ d };
  const year_month_day next{ d + days(1) };
  ExpiryDay e;
  e.day = fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()),
                      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  e.earliest = fmt::format("{:04}-{:02}-{:02}T00:00:00+14:00", static_cast<int>(next.year()),
                           static_cast<unsigned>(next.month()), static_cast<unsigned>(next.day()));
  const auto end = sys_seconds(d + days(1)) - hours(14);
  e.earliest_ms = duration_cast<milliseconds>(end.time_since_epoch()).count();
  return e;
}

} // namespace

bool
Pass::is_self(const Lane& lane)
{
  return lane.controller->config->auth == config::Auth::self;
}

std::string
Pass::refused_message(const SlotEntry& s, const std::string& controller)
{
  const auto& u = *s.user;
  return fmt::format(
    "controller {}: user {}: Jenkins refuses the token the daemon keeps for this user (revoked "
    "or expired outside the rotator?){}: the slot cannot rotate until bootstrap_token_file "
    "holds a current token of {} again (read when the kept token is refused)",
    controller, u.user,
    u.bootstrap_token_file.empty()
      ? std::string(", and no bootstrap_token_file is configured")
      : fmt::format(", and the token in bootstrap_token_file {} too", u.bootstrap_token_file),
    u.user);
}

util::Result<crypto::SecretBytes>
Pass::credential(const SlotEntry& s, bool bootstrap, bool* kept)
{
  if (kept) {
    *kept = false;
  }
  if (!m_core.state_key) {
    return util::make_error("state_key",
                            fmt::format("{}: the state key is not loaded", s.slot_name));
  }
  if (s.id && !bootstrap) {
    auto row = store().slot(*s.id);
    if (row && row->current_uuid) {
      auto token = store().token(*row->current_uuid);
      if (token && *token) {
        auto sealed = store().self_secret((*token)->seq);
        if (sealed && *sealed) {
          auto plain = m_core.state_key->open(**sealed);
          if (!plain) {
            return util::make_error(
              "state_key",
              fmt::format("{}: the kept token does not open with the state key {} (another "
                          "key?): {}",
                          s.slot_name, m_core.state_key->path(), plain.error().message));
          }
          if (kept) {
            *kept = true;
          }
          return plain;
        }
      }
    }
  }
  if (!s.user->bootstrap_token_file.empty()) {
    auto token = net::read_token_file(s.user->bootstrap_token_file);
    if (!token) {
      return util::make_error(token.error().kind, fmt::format("{}: bootstrap_token_file {}",
                                                              s.slot_name, token.error().message));
    }
    return token;
  }
  return util::make_error(
    "auth", fmt::format("{}: no token to rotate with: the state keeps none for this slot (its "
                        "first rotation, or a token the script path made); give the user's "
                        "current token in bootstrap_token_file",
                        s.slot_name));
}

asio::awaitable<bool>
Pass::probe_self(Lane& lane)
{
  std::string first_error;
  for (auto* s : lane.controller->slots) {
    bool kept = false;
    auto as = credential(*s, false, &kept);
    if (!as) {
      if (first_error.empty()) {
        first_error = as.error().message;
      }
      continue;
    }
    auto start = std::chrono::steady_clock::now();
    auto p = co_await lane.controller->api->rest_probe(s->user->user, *as);
    observe_request(lane, RequestOp::probe, status_of(p), start);
    bool refused = !p && p.error().kind == net::FailureKind::auth;
    if (refused && kept && !s->user->bootstrap_token_file.empty()) {
      // The kept token is refused: an operator may have given a new one to start over.
      if (auto boot = credential(*s, true)) {
        start = std::chrono::steady_clock::now();
        p = co_await lane.controller->api->rest_probe(s->user->user, *boot);
        observe_request(lane, RequestOp::probe, status_of(p), start);
        refused = !p && p.error().kind == net::FailureKind::auth;
      }
    }
    if (lane.variant) {
      co_return true; // another batch of the lane probed meanwhile
    }
    if (!p) {
      if (first_error.empty()) {
        first_error = refused && kept ? refused_message(*s, lane.name()) : p.error().message;
      }
      if (p.error().kind == net::FailureKind::auth) {
        continue; // this user's token is refused; another user may still tell
      }
      break;
    }
    if (!p->helpers) {
      lane.probe_error = fmt::format(
        "controller {}: auth: self needs Jenkins 2.260 or later (addFixedToken and "
        "revokeAllExcept: without them a lost REST mint can neither be proven nor removed); "
        "it runs {}",
        lane.name(), p->version);
      util::log::error("{}", lane.probe_error);
      co_return false;
    }
    lane.variant = p->expiring ? jenkins::Variant::expiring : jenkins::Variant::helpers;
    util::log::debug("controller {}: Jenkins {}, REST as each user (auth: self)", lane.name(),
                     p->version);
    co_return true;
  }
  lane.probe_error = first_error.empty()
                       ? fmt::format("controller {}: auth: self: no user to log in as", lane.name())
                       : first_error;
  util::log::error("controller {}: {}", lane.name(), lane.probe_error);
  co_return false;
}

asio::awaitable<net::Result<jenkins::MintAnswer>>
Pass::mint_self(Lane& lane, const std::vector<Work*>& batch, state::Time t)
{
  jenkins::MintAnswer answer;
  answer.items.resize(batch.size());
  std::vector<std::optional<crypto::SecretBytes>> values(batch.size());
  std::vector<std::optional<crypto::SecretBytes>> creds(batch.size());
  std::vector<char> kept(batch.size(), 0); // creds[i] is the kept token (not bootstrap)
  {
    // The intent first: each value is sealed and committed before it is sent, so a lost
    // answer can be checked (/whoAmI with it) and nothing is ever made that the state
    // cannot name.
    auto tx = begin(lane, "self intents");
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto* w = batch[i];
      bool from_kept = false;
      auto as = credential(*w->slot, false, &from_kept);
      kept[i] = from_kept ? 1 : 0;
      if (!as) {
        answer.items[i].error = jenkins::ItemError{ "no_credential", as.error().message };
        continue;
      }
      auto value = crypto::make_token_value();
      auto sealed =
        value ? m_core.state_key->seal(*value) : util::Result<std::string>(value.error());
      if (!sealed || !check(lane, store().put_self_secret(w->seq, *sealed), "self intent")) {
        answer.items[i].error = jenkins::ItemError{ "state", "the token value was not recorded" };
        continue;
      }
      creds[i] = std::move(*as);
      values[i] = std::move(*value);
    }
    if (!commit(lane, tx, "self intents")) {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (values[i]) {
          values[i].reset();
          answer.items[i].error = jenkins::ItemError{ "state", "the token value was not recorded" };
        }
      }
      co_return answer;
    }
  }
  // Each value is sealed and committed, none sent: a restart finds the attempts planned
  // with a value and asks /whoAmI, which refuses them.
  util::crash_point("self_after_intent");
  co_await for_each_concurrently(
    batch.size(), static_cast<std::size_t>(lane.controller->config->max_concurrent),
    [&](std::size_t i) -> asio::awaitable<void> {
      if (!values[i]) {
        co_return;
      }
      auto* w = batch[i];
      std::optional<ExpiryDay> expiry;
      if (*lane.variant == jenkins::Variant::expiring) {
        expiry = expiry_day(t + w->slot->user->policy.lifetime);
      }
      const auto start = std::chrono::steady_clock::now();
      // Named arguments, no temporaries in the co_await: GCC 12 frees a conditional
      // expression's temporary there twice.
      std::optional<std::string> day;
      if (expiry) {
        day = expiry->day;
      }
      std::string user = w->slot->user->user;
      std::string name = w->name;
      auto r =
        co_await lane.controller->api->add_fixed_token(user, *creds[i], name, *values[i], day);
      observe_request(lane, RequestOp::mint, status_of(r), start);
      creds[i].reset();
      // A 401 ran nothing: with the kept token refused, bootstrap_token_file may hold a
      // new token an operator gave to start over.
      bool refused = !r && r.error().kind == net::FailureKind::auth;
      if (refused && kept[i] && !w->slot->user->bootstrap_token_file.empty()) {
        if (auto boot = credential(*w->slot, true)) {
          const auto again = std::chrono::steady_clock::now();
          r = co_await lane.controller->api->add_fixed_token(user, *boot, name, *values[i], day);
          observe_request(lane, RequestOp::mint, status_of(r), again);
          refused = !r && r.error().kind == net::FailureKind::auth;
          w->bootstrapped = r.has_value();
        }
      }
      if (r) {
        jenkins::Minted m;
        m.uuid = std::move(*r);
        m.token = std::move(*values[i]);
        if (expiry) {
          m.jenkins_expires_ms = expiry->earliest_ms;
          m.jenkins_expires = expiry->earliest;
        }
        answer.items[i].minted = std::move(m);
        co_return;
      }
      values[i].reset();
      const auto& f = r.error();
      // A sent mint without a usable answer may have run: "lost" (settled by /whoAmI).
      const bool lost = f.kind == net::FailureKind::outcome_unknown ||
                        f.kind == net::FailureKind::timeout ||
                        f.kind == net::FailureKind::bad_output;
      std::string kind = lost ? "lost" : "exception";
      if (f.status == 404) {
        kind = "unknown_user";
      }
      if (refused) {
        answer.items[i].error =
          jenkins::ItemError{ "auth",
                              kept[i] ? refused_message(*w->slot, lane.name()) : f.message };
        co_return;
      }
      answer.items[i].error = jenkins::ItemError{ kind, f.message };
    });
  co_return answer;
}

asio::awaitable<std::vector<Work*>>
Pass::settle_self_lost(Lane& lane, std::vector<Work*> lost)
{
  // made[i]: nullopt = unknown (the attempt stays planned), else whether the token exists.
  std::vector<std::optional<bool>> made(lost.size());
  for (std::size_t i = 0; i < lost.size(); ++i) {
    auto& w = *lost[i];
    auto sealed = store().self_secret(w.seq);
    if (sealed && !*sealed) {
      made[i] = false; // the intent is written before the call: nothing was sent
      continue;
    }
    auto value = sealed && m_core.state_key ? m_core.state_key->open(**sealed)
                                            : util::Result<crypto::SecretBytes>(util::make_error(
                                                "state", "the token value is not readable"));
    if (!value) {
      w.mark(SlotResult::error, FailureKind::state,
             fmt::format("lost mint {} not looked up: {}", w.name, value.error().message));
      continue;
    }
    auto v = co_await verify(lane, w.slot->user->user, *value);
    if (v) {
      made[i] = true;
    } else if (v.error().kind == net::FailureKind::auth) {
      made[i] = false;
    } else {
      w.mark(SlotResult::error, FailureKind::outcome_unknown,
             fmt::format("lost mint {} not looked up: {}", w.name, v.error().message));
    }
  }
  // /whoAmI has answered, nothing is recorded: a restart asks again.
  util::crash_point("self_lost_checked");
  std::vector<Work*> settled;
  auto tx = begin(lane, "lost mints");
  for (std::size_t i = 0; i < lost.size(); ++i) {
    auto& w = *lost[i];
    if (!made[i]) {
      continue;
    }
    const auto outcome =
      *made[i] ? "lost mint made (its value logs in): its uuid is unknown, so revokeAllExcept "
                 "removes it"
               : "lost mint: not made (Jenkins refuses its value)";
    // Swept either way: a mint still on its way when /whoAmI asked may land later.
    check(lane, store().add_self_sweep(*w.slot->id, now(), fmt::format("lost mint {}", w.name)),
          "self sweep");
    if (!check(lane, store().abandon_attempt(w.seq, outcome, now()), "abandon")) {
      w.mark(SlotResult::error, FailureKind::state, "the lost mint was not settled");
      continue;
    }
    audit(w.slot, w.seq, "lost_mint", outcome);
    w.mark(SlotResult::abandoned, FailureKind::outcome_unknown, outcome);
    settled.push_back(&w);
  }
  co_return commit_settled(lane, tx, lost, std::move(settled));
}

asio::awaitable<std::set<std::string>>
Pass::revoke_self(Lane& lane, std::vector<Revoke> items)
{
  std::set<std::string> gone;
  co_await for_each_concurrently(
    items.size(), static_cast<std::size_t>(lane.controller->config->max_concurrent),
    [&](std::size_t i) -> asio::awaitable<void> {
      const auto& item = items[i];
      const auto& slots = lane.controller->slots;
      const auto it = std::find_if(slots.begin(), slots.end(), [&](const SlotEntry* s) {
        return config::fold_user_id(s->user->user) == config::fold_user_id(item.user);
      });
      bool ok = false;
      if (it == slots.end()) {
        util::log::error("controller {}: a token of {} cannot be revoked: the user is no longer "
                         "configured, and auth: self has no other credential",
                         lane.name(), item.user);
      } else if (auto as = credential(**it); !as) {
        util::log::error("controller {}: revoke: {}", lane.name(), as.error().message);
      } else {
        const auto start = std::chrono::steady_clock::now();
        auto r = co_await lane.controller->api->rest_revoke(item.user, *as, item.uuid);
        observe_request(lane, RequestOp::revoke, status_of(r), start);
        ok = r.has_value();
        if (!r) {
          util::log::error("controller {}: revoke of a token of {}: {}", lane.name(), item.user,
                           r.error().kind == net::FailureKind::auth
                             ? refused_message(**it, lane.name())
                             : r.error().message);
        }
      }
      if (ok) {
        gone.insert(item.uuid);
      }
      if (m_observer) {
        m_observer->on_revoke(lane.name(), item.user, item.reason, ok);
      }
    });
  co_return gone;
}

void
Pass::self_committed(Lane& lane, Work& w, const std::optional<std::string>& old_current)
{
  if (old_current && !w.bootstrapped) {
    // The old current logged in when its value is kept; else it was a token of the script
    // path (a slot moved from auth: admin) and the bootstrap token logged in. A slot
    // whose kept token Jenkins refused logged in with the bootstrap token (bootstrapped).
    auto token = store().token(*old_current);
    auto sealed = token && *token ? store().self_secret((*token)->seq)
                                  : util::Result<std::optional<std::string>>(std::nullopt);
    if (sealed && *sealed) {
      return;
    }
  }
  const auto& u = *w.slot->user;
  // The bootstrap token (uuid unknown) retires like a previous token: after grace.
  check(lane, store().add_self_sweep(*w.slot->id, now() + u.policy.grace, "the bootstrap token"),
        "self sweep");
  util::log::info("{}: first rotation committed: the daemon now keeps the current token sealed "
                  "to its state key; bootstrap_token_file {} is no longer needed, and the "
                  "bootstrap token is revoked after grace",
                  w.slot->slot_name,
                  u.bootstrap_token_file.empty() ? "(none)" : u.bootstrap_token_file);
  audit(w.slot, w.seq, "bootstrap_done", "bootstrap_token_file no longer needed");
}

asio::awaitable<void>
Pass::sweep_self(Lane& lane)
{
  auto sweeps = store().self_sweeps();
  if (!sweeps) {
    check(lane, sweeps.error(), "self sweeps");
    co_return;
  }
  const auto t = now();
  for (const auto& sweep : *sweeps) {
    if (sweep.not_before > t || stopping()) {
      continue;
    }
    const auto& slots = lane.controller->slots;
    const auto it = std::find_if(slots.begin(), slots.end(),
                                 [&](const SlotEntry* s) { return s->id == sweep.slot; });
    if (it == slots.end()) {
      continue; // another lane's
    }
    auto& s = **it;
    const auto row = slot_row(s);
    if (!row || !row->current_uuid) {
      continue; // nothing to keep yet: the bootstrap token is still the credential
    }
    // revokeAllExcept takes every other token: wait while any must live (a previous one in
    // its grace, an open attempt whose token a sink may hold).
    auto attempts = store().attempts_of_slot(*s.id, 4);
    auto live = store().live_tokens(*s.id);
    if (!attempts || !live) {
      continue;
    }
    const bool open = std::any_of(attempts->begin(), attempts->end(), [](const auto& a) {
      return a.state == state::AttemptState::planned || a.state == state::AttemptState::minted ||
             a.state == state::AttemptState::verified || a.state == state::AttemptState::delivering;
    });
    const bool in_grace = std::any_of(live->begin(), live->end(), [&](const state::Token& k) {
      return k.role == state::TokenRole::previous && k.retire_at && *k.retire_at > t;
    });
    if (open || in_grace) {
      continue;
    }
    auto as = credential(s);
    if (!as) {
      util::log::error("controller {}: sweep: {}", lane.name(), as.error().message);
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    auto r =
      co_await lane.controller->api->rest_revoke_all_except(s.user->user, *as, *row->current_uuid);
    observe_request(lane, RequestOp::revoke, status_of(r), start);
    if (!r) {
      util::log::error("{}: revokeAllExcept: {}", s.slot_name,
                       r.error().kind == net::FailureKind::auth ? refused_message(s, lane.name())
                                                                : r.error().message);
      continue;
    }
    // Jenkins has swept, the state still marks the sweep: a restart sweeps again (the same
    // current token is kept, so the second call changes nothing).
    util::crash_point("self_mid_sweep");
    auto tx = begin(lane, "self sweep");
    for (const auto& k : *live) {
      if (k.role != state::TokenRole::current) {
        check(lane, store().mark_revoked(k.uuid, now()), "revoked");
      }
    }
    check(lane, store().clear_self_sweep(*s.id), "self sweep");
    audit(&s, std::nullopt, "self_sweep",
          fmt::format("revokeAllExcept the current token ({})", sweep.reason));
    commit(lane, tx, "self sweep");
    if (m_observer) {
      m_observer->on_revoke(lane.name(), s.user->user, RevokeReason::orphan, true);
    }
    util::log::info("{}: revoked every token but the current one ({})", s.slot_name, sweep.reason);
  }
}

} // namespace rotation::detail
