#include "app/engine.hpp"

#include "app/client_options.hpp"
#include "app/for_each_concurrently.hpp"
#include "crypto/envelope.hpp"
#include "jenkins/probe.hpp"
#include "jenkins/tokens.hpp"
#include "net/http_client.hpp"
#include "schedule/schedule.hpp"
#include "sinks/sink.hpp"
#include "util/backoff.hpp"
#include "util/crash_point.hpp"
#include "util/duration.hpp"
#include "util/log.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <span>

namespace app {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using state::Time;

namespace {

// A permanent slot error (unknown user, user outside the realm) is retried this rarely:
// DESIGN §2.2 "backoff up to 6 h, no churn".
constexpr std::chrono::seconds k_max_slot_backoff = 6h;
constexpr std::chrono::seconds k_first_slot_backoff = 5min;
// Slots whose sinks are written at once. Each slot's own sinks go one after another;
// file sinks wait for the disk on a pool of their own (sinks::FileSink).
constexpr std::size_t k_deliveries_in_flight = 16;

Time
now_seconds()
{
  return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

// Exponential slot backoff after `failures` failed attempts in a row.
std::chrono::seconds
slot_backoff(int failures)
{
  auto d = k_first_slot_backoff;
  for (int i = 1; i < failures && d < k_max_slot_backoff; ++i) {
    d *= 2;
  }
  return std::min(d, k_max_slot_backoff);
}

bool
is_permanent(const std::string& kind)
{
  return kind == "unknown_user" || kind == "no_token_property" || kind == "not_in_realm";
}

// One configured sink, ready to deliver, with the hash the state store keeps.
struct SinkEntry
{
  const config::Sink* config = nullptr;
  std::unique_ptr<sinks::Sink> sink;
  std::vector<crypto::Recipient> recipients;
  std::string hash; // sinks::config_hash + the recipients' key ids
};

struct SlotEntry
{
  const config::User* user = nullptr;
  std::string slot_name; // controller/user
  state::SlotId id = 0;
  std::vector<SinkEntry> sinks;
  schedule::Schedule schedule;
  std::optional<schedule::Zone> zone;
};

struct ControllerEntry
{
  const config::Controller* config = nullptr;
  std::unique_ptr<net::Client> client;
  std::optional<jenkins::Variant> variant; // from the probe, once per pass
  std::string probe_error;
  // From this pass's reconcile: a token of ours with a seq above the database's
  // highest means the database is stale (restored or reset): no pruning, no rotation.
  std::string stale;
  // How far Jenkins' clock runs ahead of ours (never negative): added to the expiry we
  // ask for, so Jenkins never kills a token before the daemon's deadline.
  std::chrono::seconds ahead{ 0 };
  std::optional<bool> usage_statistics;
  std::int64_t jenkins_now_ms = 0;
  std::map<std::string, jenkins::TokenInfo> live; // uuid -> what Jenkins listed
  bool listed = false;
};

// A token name of ours: {prefix}{instance}-{seq:06} (DESIGN §2.1).
struct OurName
{
  std::string instance;
  state::Seq seq = 0;
};

std::optional<OurName>
parse_token_name(std::string_view name, std::string_view prefix)
{
  if (!name.starts_with(prefix)) {
    return std::nullopt;
  }
  name.remove_prefix(prefix.size());
  if (name.size() < 8 + 1 + 6 || name.size() > 8 + 1 + 18 || name[8] != '-') {
    return std::nullopt;
  }
  const auto instance = name.substr(0, 8);
  const auto digits = name.substr(9);
  const bool hex = std::all_of(instance.begin(), instance.end(), [](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
  });
  const bool dec =
    std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (!hex || !dec) {
    return std::nullopt;
  }
  return OurName{ std::string(instance), std::stoll(std::string(digits)) };
}

// One sink's outcome in this pass, recorded with the rest of its batch.
struct SinkResult
{
  int sink_index = 0;
  state::SinkOutcome outcome = state::SinkOutcome::retryable;
  std::string message;
  int tries = 1; // within this pass
};

// Work in flight for one slot during a pass.
struct Work
{
  SlotEntry* slot = nullptr;
  state::Seq seq = 0;
  std::string name;
  std::optional<std::string> old_uuid;
  std::optional<std::chrono::seconds> old_age;
  std::optional<jenkins::Minted> minted;
  Time created{};
  SlotReport report;
  std::vector<SinkResult> sink_results; // not yet in the state
  // Open before this process started: a sink may hold its token although no result
  // says so (results are recorded per batch), so it is never failed, only retried.
  bool resumed = false;
};

} // namespace

struct Engine::Impl
{
  asio::any_io_executor executor;
  const config::Config& config;
  state::Store& store;
  std::map<std::string, ControllerEntry> controllers;
  std::vector<SlotEntry> slots;
  std::mt19937_64 rng{ std::random_device{}() };
  // plan --connect: reconcile and prune only say what they would do (no revoke, no
  // state change); `preview` collects it.
  bool dry_run = false;
  std::vector<std::string> preview;

  Impl(asio::any_io_executor ex, const config::Config& c, state::Store& s)
    : executor(std::move(ex))
    , config(c)
    , store(s)
  {
  }

  std::string token_name(const config::User& user, state::Seq seq) const
  {
    return fmt::format("{}{}-{:06}", user.policy.token_prefix, store.instance_id(), seq);
  }

  void audit(const SlotEntry* slot, std::optional<state::Seq> seq, std::string_view event,
             std::string_view detail)
  {
    if (auto r = store.append_audit(now_seconds(), slot ? std::optional(slot->id) : std::nullopt,
                                    seq, event, detail);
        !r) {
      util::log::error("audit log: {}", r.error().message);
    }
  }

  void log_store_error(std::string_view what, const util::Error& e)
  {
    util::log::error("state: {}: {}", what, e.message);
  }

  // Is the slot due now (DESIGN §2.2, §8)?
  bool is_due(const SlotEntry& s, const state::Slot& row, Time now, std::string& why) const
  {
    if (row.backoff_until && *row.backoff_until > now) {
      why = "backing off";
      return false;
    }
    if (!row.current_uuid) {
      why = "no current token";
      return true;
    }
    if (row.next_due && *row.next_due <= now) {
      why = "made due";
      return true;
    }
    const auto jitter = schedule::Jitter::for_slot(s.slot_name, s.user->policy.jitter);
    const auto next = schedule::next_run(s.schedule, *s.zone, jitter, row.last_rotation, now);
    if (next && *next <= now) {
      why = "scheduled";
      return true;
    }
    why = "not due";
    return false;
  }

  // A sink or recipient change makes the slot due at once: the daemon cannot re-seal
  // an old token for a new sink set (DESIGN §2.2).
  bool sinks_changed(const SlotEntry& s, const state::Slot& row)
  {
    if (!row.current_uuid) {
      return false;
    }
    auto token = store.token(*row.current_uuid);
    if (!token || !*token) {
      return false;
    }
    auto envelopes = store.envelopes((*token)->seq);
    if (!envelopes) {
      return false;
    }
    if (envelopes->size() != s.sinks.size()) {
      return true;
    }
    for (const auto& e : *envelopes) {
      if (e.sink_index < 0 || static_cast<std::size_t>(e.sink_index) >= s.sinks.size() ||
          s.sinks[static_cast<std::size_t>(e.sink_index)].hash != e.sink_hash) {
        return true;
      }
    }
    return false;
  }

  asio::awaitable<void> sleep(std::chrono::milliseconds d)
  {
    asio::steady_timer timer(executor, d);
    co_await timer.async_wait(asio::use_awaitable);
  }

  // Full-jitter backoff for the n-th retry (n ≥ 1), from the `retry:` config.
  std::chrono::milliseconds retry_delay(int n)
  {
    return util::full_jitter_delay(config.retry.initial, config.retry.max, n, rng);
  }

  // Probes a controller once per pass to pick the token API variant.
  asio::awaitable<bool> ensure_probed(ControllerEntry& c)
  {
    if (c.variant) {
      co_return true;
    }
    if (!c.probe_error.empty()) {
      co_return false;
    }
    auto p = co_await jenkins::probe(*c.client);
    if (!p) {
      c.probe_error = p.error().message;
      util::log::error("controller {}: {}", c.config->name, c.probe_error);
      co_return false;
    }
    if (!p->administer) {
      c.probe_error = fmt::format("controller {}: {} lacks Overall/Administer", c.config->name,
                                  c.config->admin_user);
      co_return false;
    }
    c.variant = jenkins::variant_of(*p);
    if (p->now_millis > p->local_millis) {
      c.ahead = std::chrono::seconds((p->now_millis - p->local_millis + 999) / 1000);
    }
    util::log::debug("controller {}: Jenkins {}, {} tokens", c.config->name, p->version,
                     jenkins::to_string(*c.variant));
    co_return true;
  }

  // Calls fn(first, count) for each batch_size slice of n items bound for `c`, with up
  // to max_concurrent slices in flight (net::Client caps the requests in any case).
  template<typename F>
  asio::awaitable<void> per_batch(const ControllerEntry& c, std::size_t n, F fn)
  {
    const auto batch = static_cast<std::size_t>(c.config->batch_size);
    co_await for_each_concurrently((n + batch - 1) / batch,
                                   static_cast<std::size_t>(c.config->max_concurrent),
                                   [&](std::size_t j) -> asio::awaitable<void> {
                                     co_await fn(j * batch, std::min(batch, n - j * batch));
                                   });
  }

  // Revokes tokens by uuid on one controller; returns the uuids that are gone.
  asio::awaitable<std::set<std::string>> revoke(ControllerEntry& c,
                                                std::vector<jenkins::RevokeItem> items)
  {
    std::set<std::string> gone;
    if (items.empty() || !co_await ensure_probed(c)) {
      co_return gone;
    }
    co_await per_batch(
      c, items.size(), [&](std::size_t first, std::size_t n) -> asio::awaitable<void> {
        std::span<const jenkins::RevokeItem> chunk(items.data() + first, n);
        auto r = co_await jenkins::revoke(*c.client, *c.variant, chunk);
        if (!r) {
          util::log::error("controller {}: revoke: {}", c.config->name, r.error().message);
          co_return;
        }
        for (std::size_t k = 0; k < n && k < r->items.size(); ++k) {
          const auto& item = r->items[k];
          if (item.outcome == jenkins::RevokeOutcome::revoked ||
              item.outcome == jenkins::RevokeOutcome::not_found) {
            gone.insert(chunk[k].uuid);
          } else {
            util::log::error("controller {}: revoke of a token of {}: {}", c.config->name,
                             chunk[k].user, item.error ? item.error->message : "failed");
          }
        }
      });
    co_return gone;
  }

  // Lost mints: looks the names up and revokes what it finds (DESIGN §2.2). Returns
  // false when the list itself failed (the attempts stay `planned` for the next pass).
  asio::awaitable<bool> settle_lost_mints(ControllerEntry& c, std::vector<Work*> lost)
  {
    if (lost.empty()) {
      co_return true;
    }
    if (!co_await ensure_probed(c)) {
      co_return false;
    }
    std::vector<std::string> users;
    for (auto* w : lost) {
      users.push_back(w->slot->user->user);
    }
    auto listed = co_await jenkins::list(*c.client, users);
    if (!listed) {
      util::log::error("controller {}: looking for lost mints: {}", c.config->name,
                       listed.error().message);
      co_return false;
    }
    std::vector<jenkins::RevokeItem> found;
    for (std::size_t i = 0; i < lost.size() && i < listed->users.size(); ++i) {
      for (const auto& t : listed->users[i].tokens) {
        if (t.name == lost[i]->name) {
          found.push_back({ lost[i]->slot->user->user, t.uuid });
        }
      }
    }
    const auto gone = co_await revoke(c, found);
    auto tx = store.begin();
    for (std::size_t i = 0; i < lost.size(); ++i) {
      const bool had = std::any_of(found.begin(), found.end(), [&](const auto& f) {
        return f.user == lost[i]->slot->user->user;
      });
      const auto outcome = had ? "lost mint found by name and revoked" : "lost mint: nothing found";
      if (auto r = store.abandon_attempt(lost[i]->seq, outcome, now_seconds()); !r) {
        log_store_error("abandon", r.error());
      }
      lost[i]->report.result = "abandoned";
      lost[i]->report.message = outcome;
    }
    if (tx) {
      (void)tx->commit();
    }
    (void)gone;
    co_return true;
  }

  void fail(Work& w, const std::string& kind, const std::string& message)
  {
    const auto now = now_seconds();
    if (auto r = store.fail_attempt(w.seq, message, now); !r) {
      log_store_error("fail attempt", r.error());
    }
    auto row = store.slot(w.slot->id);
    const int failures = row ? row->consecutive_failures : 1;
    const auto backoff = is_permanent(kind) ? k_max_slot_backoff : slot_backoff(failures);
    (void)store.set_backoff(w.slot->id, now + backoff);
    w.report.result = "failed";
    w.report.message = message;
    util::log::error("{}: {}", w.slot->slot_name, message);
  }

  // Seals the new token once per sink for that sink's recipients.
  util::Result<std::vector<state::Envelope>> seal_all(Work& w, const jenkins::Minted& m,
                                                      Time created)
  {
    const auto& u = *w.slot->user;
    crypto::Envelope info;
    info.controller = u.controller;
    info.url = controllers.at(u.controller).config->url;
    info.user = u.user;
    info.token_name = w.name;
    info.token_uuid = m.uuid;
    info.created = schedule::format_utc(created);
    info.expires = schedule::format_utc(created + u.policy.lifetime);
    if (!m.jenkins_expires.empty()) {
      info.jenkins_expires = m.jenkins_expires;
    }
    std::vector<state::Envelope> out;
    for (std::size_t i = 0; i < w.slot->sinks.size(); ++i) {
      auto sealed = crypto::Envelope::seal(info, m.token, w.slot->sinks[i].recipients);
      if (!sealed) {
        return sealed.error();
      }
      out.push_back({ static_cast<int>(i), w.slot->sinks[i].hash, sealed->to_json() });
    }
    return out;
  }

  // Delivers the attempt's envelopes, in sink order, to the sinks that do not hold them
  // yet, retrying retryable failures with backoff. Returns how many sinks hold the token;
  // the outcomes wait in w.sink_results for the batch's transaction.
  asio::awaitable<int> deliver(Work& w)
  {
    auto envelopes = store.envelopes(w.seq);
    auto results = store.sink_results(w.seq);
    if (!envelopes || !results) {
      co_return 0;
    }
    auto attempt = store.attempt(w.seq);
    const std::string uuid =
      attempt && *attempt && (*attempt)->token_uuid ? *(*attempt)->token_uuid : std::string();
    int ok = 0;
    for (const auto& e : *envelopes) {
      const bool done = std::any_of(results->begin(), results->end(), [&](const auto& r) {
        return r.sink_index == e.sink_index && r.outcome == state::SinkOutcome::ok;
      });
      if (done) {
        ++ok;
        continue;
      }
      auto& entry = w.slot->sinks.at(static_cast<std::size_t>(e.sink_index));
      sinks::Delivery d{ e.json,
                         w.slot->user->user,
                         w.slot->user->controller,
                         uuid,
                         w.name,
                         static_cast<std::uint64_t>(w.seq) };
      sinks::Outcome outcome;
      int attempt_no = 1;
      for (;; ++attempt_no) {
        outcome = co_await entry.sink->deliver(d);
        if (outcome.status != sinks::Status::retryable || attempt_no >= config.retry.attempts) {
          break;
        }
        util::log::warning("{}: {}: {} (retrying)", w.slot->slot_name, entry.sink->describe(),
                           outcome.message);
        co_await sleep(retry_delay(attempt_no));
      }
      const auto so = outcome.status == sinks::Status::ok          ? state::SinkOutcome::ok
                      : outcome.status == sinks::Status::retryable ? state::SinkOutcome::retryable
                                                                   : state::SinkOutcome::rejected;
      w.sink_results.push_back({ e.sink_index, so, outcome.message, attempt_no });
      if (outcome.ok()) {
        ++ok;
        util::crash_point("between_sinks");
      } else {
        util::log::error("{}: {}: {}", w.slot->slot_name, entry.sink->describe(), outcome.message);
        w.report.message = outcome.message;
      }
    }
    co_return ok;
  }

  // Records the slot's sink results, then commits the attempt, or keeps it delivering
  // (roll forward), or fails it when no sink holds the token (its token is then revoked
  // by the prune). Runs inside the batch's transaction: writes only, no co_await.
  void settle(Work& w, int ok)
  {
    const int total = static_cast<int>(w.slot->sinks.size());
    w.report.sinks_ok = ok;
    w.report.sinks_total = total;
    const auto now = now_seconds();
    for (const auto& r : w.sink_results) {
      if (auto rec =
            store.record_sink_result(w.seq, r.sink_index, r.outcome, r.message, now, r.tries);
          !rec) {
        log_store_error("sink result", rec.error());
      }
    }
    w.sink_results.clear();
    if (ok == total) {
      auto before = store.slot(w.slot->id);
      const bool was_degraded = before && before->degraded;
      auto c = store.commit_attempt(w.seq, now, w.slot->user->policy.grace);
      if (!c) {
        log_store_error("commit", c.error());
        w.report.result = "error";
        w.report.message = c.error().message;
        return;
      }
      if (was_degraded) {
        audit(w.slot, w.seq, "recovered", fmt::format("every sink holds {} now", w.name));
      }
      w.report.result = "committed";
      w.report.message.clear();
      w.report.previous_retires = c->retire_at;
    } else if (ok == 0 && !w.resumed) {
      fail(w, "delivery", fmt::format("no sink took the new token: {}", w.report.message));
    } else {
      // Roll forward: a sink holds the new token (or, resumed, may), so it must not be
      // revoked.
      (void)store.set_degraded(w.slot->id, true,
                               fmt::format("{} of {} sinks hold {}", ok, total, w.name), now);
      w.report.result = "delivering";
    }
  }

  // Delivers the tokens of a batch, many slots at once, then settles every slot in one
  // transaction (DESIGN §2.2 Batching: one per batch step, not per slot).
  asio::awaitable<void> deliver_and_commit(const std::vector<Work*>& works)
  {
    std::vector<int> ok(works.size(), 0);
    co_await for_each_concurrently(
      works.size(), k_deliveries_in_flight,
      [&](std::size_t i) -> asio::awaitable<void> { ok[i] = co_await deliver(*works[i]); });
    util::crash_point("before_commit");
    {
      auto tx = store.begin();
      if (!tx) {
        log_store_error("begin", tx.error()); // each write is then its own transaction
      }
      for (std::size_t i = 0; i < works.size(); ++i) {
        settle(*works[i], ok[i]);
      }
      if (tx) {
        if (auto r = tx->commit(); !r) {
          log_store_error("commit deliveries", r.error());
          for (auto* w : works) {
            w->report.result = "error";
            w->report.message = r.error().message;
          }
          co_return;
        }
      }
    }
    util::crash_point("after_commit");
    for (auto* w : works) {
      if (w->report.result == "committed") {
        util::log::info("{}: committed {} to {} sink{}", w->slot->slot_name, w->name,
                        w->report.sinks_total, w->report.sinks_total == 1 ? "" : "s");
      }
    }
  }

  // Resumes attempts a previous process left open (DESIGN §2.2).
  asio::awaitable<void> resume(std::vector<SlotReport>& reports)
  {
    auto open = store.open_attempts();
    if (!open) {
      log_store_error("open attempts", open.error());
      co_return;
    }
    std::map<std::string, std::vector<std::unique_ptr<Work>>> lost; // per controller
    std::vector<std::unique_ptr<Work>> deliverable;
    std::map<std::string, std::vector<jenkins::RevokeItem>> to_revoke;
    for (const auto& a : *open) {
      auto it =
        std::find_if(slots.begin(), slots.end(), [&](const auto& s) { return s.id == a.slot; });
      if (it == slots.end()) {
        continue; // a removed slot: its tokens are pruned, nothing is delivered
      }
      auto w = std::make_unique<Work>();
      w->slot = &*it;
      w->seq = a.seq;
      w->name = a.token_name;
      w->report.slot = it->slot_name;
      w->report.new_token = a.token_name;
      switch (a.state) {
        case state::AttemptState::planned:
          lost[it->user->controller].push_back(std::move(w));
          break;
        case state::AttemptState::minted:
          // The plain value died with the process: the token can never reach a sink.
          if (a.token_uuid) {
            to_revoke[it->user->controller].push_back({ it->user->user, *a.token_uuid });
          }
          fail(*w, "restart", "minted before a restart; the plain token is gone, minting anew");
          (void)store.set_backoff(it->id, std::nullopt);
          break;
        case state::AttemptState::verified:
        case state::AttemptState::delivering: {
          bool changed = false;
          if (auto envs = store.envelopes(a.seq)) {
            for (const auto& e : *envs) {
              if (static_cast<std::size_t>(e.sink_index) >= it->sinks.size() ||
                  it->sinks[static_cast<std::size_t>(e.sink_index)].hash != e.sink_hash) {
                changed = true;
              }
            }
          }
          if (changed) {
            // A new attempt supersedes it at once; delivered sinks keep the old token
            // until the new one commits.
            (void)store.set_next_due(it->id, now_seconds());
            audit(&*it, a.seq, "superseded", "a sink's config changed before delivery finished");
          } else {
            deliverable.push_back(std::move(w));
          }
          break;
        }
        default:
          break;
      }
    }
    for (auto& [name, items] : to_revoke) {
      auto gone = co_await revoke(controllers.at(name), items);
      for (const auto& uuid : gone) {
        (void)store.mark_revoked(uuid, now_seconds());
      }
    }
    for (auto& [name, works] : lost) {
      std::vector<Work*> ptrs;
      for (auto& w : works) {
        ptrs.push_back(w.get());
      }
      co_await settle_lost_mints(controllers.at(name), ptrs);
      for (auto& w : works) {
        reports.push_back(w->report);
      }
    }
    // Before a resumed delivery: the token must still be in Jenkins with life left, else
    // delivering it would hand consumers a dead token (DESIGN §2.2 Resume).
    std::vector<Work*> candidates;
    for (auto& w : deliverable) {
      candidates.push_back(w.get());
    }
    const auto living = co_await still_alive(candidates);
    std::vector<Work*> alive;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      auto* w = candidates[i];
      if (!living[i]) {
        (void)store.set_next_due(w->slot->id, now_seconds());
        audit(w->slot, w->seq, "superseded",
              "the resumed attempt's token is gone or past its deadline: minting anew");
        continue;
      }
      w->resumed = true;
      alive.push_back(w);
    }
    co_await deliver_and_commit(alive);
    for (auto* w : alive) {
      reports.push_back(w->report);
    }
  }

  // Which resumed attempts' tokens are still listed by Jenkins, unexpired and before the
  // daemon's deadline? One list script per batch_size users of a controller, up to
  // max_concurrent at once. A failed list counts as "yes": delivery is what we were doing.
  asio::awaitable<std::vector<bool>> still_alive(const std::vector<Work*>& works)
  {
    std::vector<bool> alive(works.size(), false);
    std::vector<std::string> uuids(works.size());
    std::map<std::string, std::vector<std::size_t>> per_controller; // -> indices to list
    for (std::size_t i = 0; i < works.size(); ++i) {
      auto token = store.token_by_seq(works[i]->seq);
      if (!token || !*token || (*token)->expires <= now_seconds()) {
        continue;
      }
      uuids[i] = (*token)->uuid;
      per_controller[works[i]->slot->user->controller].push_back(i);
    }
    for (const auto& [name, indices] : per_controller) {
      auto& c = controllers.at(name);
      if (!co_await ensure_probed(c)) {
        for (const auto i : indices) {
          alive[i] = true;
        }
        continue;
      }
      co_await per_batch(c, indices.size(),
                         [&](std::size_t first, std::size_t n) -> asio::awaitable<void> {
                           const std::span<const std::size_t> chunk(indices.data() + first, n);
                           std::vector<std::string> users;
                           for (const auto i : chunk) {
                             users.push_back(works[i]->slot->user->user);
                           }
                           auto listed = co_await jenkins::list(*c.client, users);
                           for (std::size_t k = 0; k < chunk.size(); ++k) {
                             const auto i = chunk[k];
                             if (!listed || k >= listed->users.size() || listed->users[k].error) {
                               alive[i] = true;
                               continue;
                             }
                             for (const auto& t : listed->users[k].tokens) {
                               if (t.uuid == uuids[i]) {
                                 alive[i] = !t.expired;
                               }
                             }
                           }
                         });
    }
    co_return alive;
  }

  // Rotates one batch of due slots of one controller.
  asio::awaitable<void> rotate_batch(ControllerEntry& c, std::vector<Work*> batch,
                                     bool second_try = false)
  {
    const auto now = now_seconds();
    {
      auto tx = store.begin();
      if (!tx) {
        log_store_error("begin", tx.error());
        co_return;
      }
      for (auto* w : batch) {
        auto seq = store.next_seq();
        if (!seq) {
          log_store_error("next seq", seq.error());
          co_return;
        }
        w->seq = *seq;
        w->name = token_name(*w->slot->user, *seq);
        w->report.new_token = w->name;
        if (auto r = store.create_attempt(w->seq, w->slot->id, w->name, now); !r) {
          log_store_error("plan", r.error());
          co_return;
        }
      }
      if (auto r = tx->commit(); !r) {
        log_store_error("commit plan", r.error());
        co_return;
      }
    }
    util::crash_point("after_planning");
    std::vector<jenkins::MintItem> items;
    for (auto* w : batch) {
      items.push_back(
        { w->slot->user->user, w->name, now + w->slot->user->policy.lifetime + c.ahead });
    }
    auto answer = co_await jenkins::mint(*c.client, *c.variant, items);
    if (!answer) {
      const auto& f = answer.error();
      const bool maybe_minted = f.kind == net::FailureKind::outcome_unknown ||
                                f.kind == net::FailureKind::script_error ||
                                f.kind == net::FailureKind::bad_output;
      if (maybe_minted) {
        // The script may have run: find the names and revoke them (DESIGN §2.2).
        util::log::warning("controller {}: mint: {}; looking the names up", c.config->name,
                           f.message);
        const bool settled = co_await settle_lost_mints(c, batch);
        if (settled && !second_try) {
          // Every lost mint is revoked or was never made: mint once more under new seqs
          // (DESIGN §2.2 "mints again under a new seq").
          for (auto* w : batch) {
            w->report.message.clear();
          }
          co_await rotate_batch(c, batch, true);
        }
      } else {
        auto tx = store.begin();
        for (auto* w : batch) {
          fail(*w, net::to_string(f.kind), f.message);
        }
        if (tx) {
          (void)tx->commit();
        }
      }
      co_return;
    }
    util::crash_point("after_mint_answer");
    // Seal and persist every minted token of the batch in one transaction.
    std::vector<Work*> minted;
    {
      auto tx = store.begin();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto* w = batch[i];
        if (i > 0) {
          util::crash_point("between_batch_items");
        }
        jenkins::MintResult missing;
        auto& item = i < answer->items.size() ? answer->items[i] : missing;
        if (!item.minted) {
          const auto kind = item.error ? item.error->kind : std::string("missing");
          const auto msg =
            item.error ? item.error->message : std::string("no answer for this item");
          fail(*w, kind, fmt::format("mint for {}: {}: {}", w->slot->user->user, kind, msg));
          continue;
        }
        w->created = now;
        auto envelopes = seal_all(*w, *item.minted, now);
        state::MintedToken mt{ item.minted->uuid, now, now + w->slot->user->policy.lifetime,
                               std::nullopt };
        if (item.minted->jenkins_expires_ms) {
          mt.jenkins_expires = Time(std::chrono::seconds(*item.minted->jenkins_expires_ms / 1000));
        }
        if (!envelopes) {
          // Without envelopes the token can never be delivered: record it, then fail so
          // the prune revokes it.
          (void)store.mark_minted(w->seq, mt, {}, now);
          fail(*w, "seal", fmt::format("sealing failed: {}", envelopes.error().message));
          continue;
        }
        if (auto r = store.mark_minted(w->seq, mt, *envelopes, now); !r) {
          log_store_error("minted", r.error());
          fail(*w, "state", r.error().message);
          continue;
        }
        w->minted = std::move(*item.minted);
        minted.push_back(w);
      }
      if (tx) {
        if (auto r = tx->commit(); !r) {
          log_store_error("commit minted", r.error());
        }
      }
    }
    util::crash_point("after_minted");
    // Verify each new token as its user (DESIGN §1.1), as many at once as the
    // controller's max_concurrent lets the client send.
    std::vector<std::optional<net::Failure>> refusals(minted.size());
    co_await for_each_concurrently(
      minted.size(), static_cast<std::size_t>(c.config->max_concurrent),
      [&](std::size_t i) -> asio::awaitable<void> {
        auto* w = minted[i];
        auto v = co_await jenkins::verify(*c.client, w->slot->user->user, w->minted->token);
        w->minted->token = crypto::SecretBytes(); // the plain value is not needed any more
        if (!v) {
          refusals[i] = v.error();
        }
      });
    std::vector<Work*> verified;
    std::vector<jenkins::RevokeItem> refused;
    {
      auto tx = store.begin();
      for (std::size_t i = 0; i < minted.size(); ++i) {
        auto* w = minted[i];
        if (const auto& f = refusals[i]) {
          const auto kind =
            f->status == 500 ? std::string("not_in_realm") : std::string(net::to_string(f->kind));
          refused.push_back({ w->slot->user->user, w->minted->uuid });
          fail(*w, kind, fmt::format("verify: {}", f->message));
          continue;
        }
        if (auto r = store.mark_verified(w->seq, now_seconds()); !r) {
          log_store_error("verified", r.error());
        }
        verified.push_back(w);
      }
      if (tx) {
        (void)tx->commit();
      }
    }
    util::crash_point("after_verify");
    if (!refused.empty()) {
      auto gone = co_await revoke(c, refused);
      for (const auto& uuid : gone) {
        (void)store.mark_revoked(uuid, now_seconds());
      }
    }
    co_await deliver_and_commit(verified);
  }

  // A previous token used after the cut-over means a consumer still holds it: it is
  // revoked at retire_at all the same, but the operator hears of it (DESIGN §2.2).
  void check_still_used(const ControllerEntry& c, const state::Token& token)
  {
    const auto slot = std::find_if(slots.begin(), slots.end(),
                                   [&](const SlotEntry& s) { return s.id == token.slot; });
    const std::string slot_name = slot != slots.end() ? slot->slot_name : token.user_display;
    if (!c.usage_statistics.value_or(false)) {
      audit(
        slot != slots.end() ? &*slot : nullptr, token.seq, "previous_use_unknown",
        fmt::format("{}: usage statistics are off in Jenkins: whether {} is still used is unknown",
                    slot_name, token.name));
      return;
    }
    const auto it = c.live.find(token.uuid);
    if (it == c.live.end() || !it->second.last_use_ms || !token.retire_at) {
      return;
    }
    auto row = store.slot(token.slot);
    if (!row || !row->last_rotation) {
      return;
    }
    // last_rotation has whole seconds: a use within the cut-over's own second may have
    // come before it, so only later uses count.
    const auto cut_over_ms = (row->last_rotation->time_since_epoch().count() + 1) * 1000;
    if (*it->second.last_use_ms > cut_over_ms) {
      util::log::warning("{}: previous token {} was used after the cut-over ({} uses in all); "
                         "revoking it as scheduled: a consumer has not picked up the new token",
                         slot_name, token.name, it->second.use_counter);
      audit(slot != slots.end() ? &*slot : nullptr, token.seq, "previous_still_used",
            fmt::format("{} used after the cut-over", token.name));
    }
  }

  // Compares what Jenkins holds with the state, for every configured slot of `c`
  // (DESIGN §2.2 Orphans): lost mints and orphans of ours are revoked; a seq above the
  // database's highest marks the database stale; tokens of other instances are only
  // reported; a current token revoked out of band makes its slot due at once; with
  // `prune: all` the user's other tokens older than `lifetime` go too.
  asio::awaitable<void> reconcile(ControllerEntry& c, std::vector<std::string>& errors)
  {
    std::vector<SlotEntry*> mine;
    for (auto& s : slots) {
      if (s.user->controller == c.config->name) {
        mine.push_back(&s);
      }
    }
    if (mine.empty() || !co_await ensure_probed(c)) {
      co_return;
    }
    const auto highest = store.highest_seq();
    if (!highest) {
      log_store_error("highest seq", highest.error());
      co_return;
    }
    // List every slot's tokens, batches in flight together, then reconcile in order.
    // answers[first]: the answer for the batch that starts at mine[first].
    std::vector<std::optional<net::Result<jenkins::ListAnswer>>> answers(mine.size());
    co_await per_batch(c, mine.size(),
                       [&](std::size_t first, std::size_t n) -> asio::awaitable<void> {
                         std::vector<std::string> users;
                         for (std::size_t k = first; k < first + n; ++k) {
                           users.push_back(mine[k]->user->user);
                         }
                         answers[first] = co_await jenkins::list(*c.client, users);
                       });
    for (const auto& listed : answers) {
      if (listed && !*listed) {
        util::log::error("controller {}: listing tokens: {}", c.config->name,
                         listed->error().message);
        co_return;
      }
    }
    std::vector<jenkins::RevokeItem> to_revoke;
    {
      // What reconcile notes (audit entries) is written in one transaction.
      std::optional<state::Transaction> tx;
      if (!dry_run) {
        if (auto t = store.begin()) {
          tx.emplace(std::move(*t));
        }
      }
      for (std::size_t first = 0; first < mine.size(); ++first) {
        if (!answers[first]) {
          continue; // not the start of a batch
        }
        const auto& listed = **answers[first];
        c.usage_statistics = listed.usage_statistics;
        c.jenkins_now_ms = listed.clock.now_ms;
        for (std::size_t k = 0; first + k < mine.size() && k < listed.users.size(); ++k) {
          reconcile_slot(c, *mine[first + k], listed.users[k], *highest, to_revoke);
        }
      }
      if (tx) {
        (void)tx->commit();
      }
    }
    c.listed = true;
    if (!c.stale.empty()) {
      util::log::error("{}", c.stale);
      errors.push_back(c.stale);
      co_return;
    }
    if (dry_run) {
      co_return;
    }
    const auto gone = co_await revoke(c, to_revoke);
    const auto now = now_seconds();
    auto tx = store.begin();
    for (const auto& uuid : gone) {
      if (auto t = store.token(uuid); t && *t && (*t)->role != state::TokenRole::current) {
        (void)store.mark_revoked(uuid, now);
      }
      c.live.erase(uuid);
    }
    if (tx) {
      (void)tx->commit();
    }
  }

  // An action of reconcile: audited when done, listed when previewed.
  void note(const SlotEntry* s, std::optional<state::Seq> seq, std::string_view event,
            const std::string& text)
  {
    if (dry_run) {
      preview.push_back(fmt::format("{}: {}", s->slot_name, text));
    } else {
      audit(s, seq, event, text);
    }
  }

  void reconcile_slot(ControllerEntry& c, SlotEntry& s, const jenkins::UserTokens& listed,
                      state::Seq highest, std::vector<jenkins::RevokeItem>& to_revoke)
  {
    if (listed.error) {
      return; // an unknown user fails at mint time, with its own backoff
    }
    auto row = store.slot(s.id);
    if (!row) {
      return;
    }
    const auto now = now_seconds();
    const auto& policy = s.user->policy;
    std::set<std::string> in_jenkins;
    for (const auto& t : listed.tokens) {
      in_jenkins.insert(t.uuid);
      c.live[t.uuid] = t;
      const auto ours = parse_token_name(t.name, policy.token_prefix);
      if (!ours) {
        // Someone else's token: only `prune: all` touches it, once older than lifetime
        // by Jenkins' own clock.
        const bool old =
          t.created_ms &&
          c.jenkins_now_ms - *t.created_ms >
            std::chrono::duration_cast<std::chrono::milliseconds>(policy.lifetime).count();
        if (policy.prune == config::PrunePolicy::all && old && !t.legacy) {
          to_revoke.push_back({ s.user->user, t.uuid });
          note(&s, std::nullopt, "prune_all",
               fmt::format("revoke \"{}\" (prune: all, older than lifetime)", t.name));
        }
        continue;
      }
      if (ours->instance != store.instance_id()) {
        util::log::info("{}: token \"{}\" belongs to another instance ({}); left alone",
                        s.slot_name, t.name, ours->instance);
        if (dry_run) {
          preview.push_back(fmt::format("{}: keep \"{}\" (another instance, {})", s.slot_name,
                                        t.name, ours->instance));
        }
        continue;
      }
      if (ours->seq > highest) {
        c.stale = fmt::format(
          "controller {}: token \"{}\" of {} has seq {} but this state database has only reached "
          "{}: the database is stale (restored from a backup or reset?); pruning and rotation on "
          "this controller are stopped until an operator resolves it",
          c.config->name, t.name, s.user->user, ours->seq, highest);
        continue;
      }
      auto known = store.token(t.uuid);
      if (known && *known) {
        const auto role = (*known)->role;
        if (role == state::TokenRole::revoked || (t.expired && role != state::TokenRole::current)) {
          to_revoke.push_back({ s.user->user, t.uuid });
          if (dry_run) {
            preview.push_back(
              fmt::format("{}: revoke \"{}\" ({})", s.slot_name, t.name,
                          t.expired ? "expired in Jenkins" : "revoked in the state"));
          }
        } else if (t.expired) {
          // Jenkins expired the current token: its consumers are locked out until the
          // next one lands, so rotate at once.
          util::log::warning("{}: Jenkins reports the current token expired: rotating at once",
                             s.slot_name);
          if (dry_run) {
            preview.push_back(
              fmt::format("{}: rotate at once (current token expired in Jenkins)", s.slot_name));
          } else {
            (void)store.set_next_due(s.id, now);
          }
        }
        continue;
      }
      // Our name and instance, but a uuid the state never recorded: a lost mint or an
      // orphan (DESIGN §2.2). Its attempt is closed (open ones were settled by resume).
      to_revoke.push_back({ s.user->user, t.uuid });
      note(&s, ours->seq, "orphan", fmt::format("revoke \"{}\" (ours, not in the state)", t.name));
    }
    if (row->current_uuid && in_jenkins.count(*row->current_uuid) == 0) {
      util::log::warning("{}: the current token is gone from Jenkins (revoked out of band?): "
                         "rotating at once",
                         s.slot_name);
      if (dry_run) {
        preview.push_back(
          fmt::format("{}: rotate at once (the current token is gone from Jenkins)", s.slot_name));
      } else if (auto r = store.mark_current_gone(*row->current_uuid, now); !r) {
        log_store_error("current gone", r.error());
      }
    }
  }

  // Revokes our tokens that are past retire_at or their deadline (DESIGN §2.2 Prune).
  asio::awaitable<void> prune()
  {
    auto candidates = store.tokens_to_prune(now_seconds());
    if (!candidates) {
      log_store_error("prune", candidates.error());
      co_return;
    }
    std::map<std::string, std::vector<jenkins::RevokeItem>> per_controller;
    auto tx = store.begin(); // the still-used checks' audit entries
    for (const auto& c : *candidates) {
      const auto it = controllers.find(c.token.controller);
      if (it == controllers.end()) {
        continue; // the controller left the config: nothing can reach its tokens
      }
      if (!it->second.stale.empty()) {
        continue; // a stale database must not prune (DESIGN §2.2 Orphans)
      }
      if (c.reason == state::PruneReason::retired) {
        check_still_used(it->second, c.token);
      }
      per_controller[c.token.controller].push_back({ c.token.user_display, c.token.uuid });
    }
    if (tx) {
      (void)tx->commit();
    }
    for (auto& [name, items] : per_controller) {
      auto gone = co_await revoke(controllers.at(name), items);
      util::crash_point("mid_prune");
      auto revoked_tx = store.begin();
      for (const auto& uuid : gone) {
        if (auto r = store.mark_revoked(uuid, now_seconds()); !r) {
          log_store_error("revoked", r.error());
        }
      }
      if (revoked_tx) {
        (void)revoked_tx->commit();
      }
      util::log::info("controller {}: pruned {} token{}", name, gone.size(),
                      gone.size() == 1 ? "" : "s");
    }
  }

  // plan --connect: what reconcile and prune would do now, changing nothing.
  asio::awaitable<PassResult> preview_pass()
  {
    dry_run = true;
    preview.clear();
    std::vector<std::string> errors;
    for (auto& [name, c] : controllers) {
      co_await reconcile(c, errors);
    }
    if (auto candidates = store.tokens_to_prune(now_seconds())) {
      for (const auto& p : *candidates) {
        const auto it = controllers.find(p.token.controller);
        const bool stale = it != controllers.end() && !it->second.stale.empty();
        preview.push_back(fmt::format("{}/{}: {} \"{}\" ({})", p.token.controller,
                                      p.token.user_display,
                                      stale ? "would revoke, but the database is stale:" : "revoke",
                                      p.token.name, state::to_string(p.reason)));
      }
    }
    for (const auto& [name, c] : controllers) {
      if (!c.probe_error.empty()) {
        errors.push_back(c.probe_error);
      }
    }
    PassResult r;
    r.errors = std::move(errors);
    r.preview = std::move(preview);
    co_return r;
  }

  asio::awaitable<PassResult> run_pass(PassOptions options)
  {
    std::vector<SlotReport> reports;
    std::vector<std::string> errors;
    for (auto& [name, c] : controllers) {
      c.variant.reset();
      c.probe_error.clear();
      c.stale.clear();
      c.live.clear();
      c.listed = false;
      c.usage_statistics.reset();
    }
    co_await resume(reports);
    for (auto& [name, c] : controllers) {
      co_await reconcile(c, errors);
    }

    const auto now = now_seconds();
    std::map<std::string, std::vector<std::unique_ptr<Work>>> due;
    for (auto& s : slots) {
      auto row = store.slot(s.id);
      if (!row) {
        log_store_error("slot", row.error());
        continue;
      }
      const bool named =
        std::find(options.named.begin(), options.named.end(), s.user) != options.named.end();
      std::string why;
      bool go = is_due(s, *row, now, why);
      if (!go && sinks_changed(s, *row)) {
        go = true;
        why = "sinks changed";
      }
      if (options.only_named) {
        go = false;
      }
      if (!go && !(options.force || named)) {
        continue;
      }
      // An attempt of this slot still open (resumed above but not committed) keeps its
      // sinks: do not stack a second one on top within the same pass.
      bool busy = false;
      for (const auto& r : reports) {
        if (r.slot == s.slot_name && r.result == "delivering") {
          busy = true;
        }
      }
      if (busy) {
        continue;
      }
      auto w = std::make_unique<Work>();
      w->slot = &s;
      w->report.slot = s.slot_name;
      w->report.sinks_total = static_cast<int>(s.sinks.size());
      if (row->current_uuid) {
        w->old_uuid = row->current_uuid;
        if (auto t = store.token(*row->current_uuid); t && *t) {
          w->old_age = now - (*t)->created;
          w->report.old_age = w->old_age;
        }
      }
      util::log::debug("{}: due ({})", s.slot_name, why);
      due[s.user->controller].push_back(std::move(w));
    }

    for (auto& [name, works] : due) {
      auto& c = controllers.at(name);
      if (!c.stale.empty()) {
        for (auto& w : works) {
          w->report.result = "error";
          w->report.message = c.stale;
          reports.push_back(w->report);
        }
        continue;
      }
      if (!co_await ensure_probed(c)) {
        for (auto& w : works) {
          w->report.result = "error";
          w->report.message = c.probe_error;
          reports.push_back(w->report);
        }
        continue;
      }
      // Batches overlap (one mints while another verifies or writes its sinks); the
      // client keeps the controller's requests within max_concurrent.
      co_await per_batch(c, works.size(),
                         [&](std::size_t first, std::size_t n) -> asio::awaitable<void> {
                           std::vector<Work*> chunk;
                           for (std::size_t k = first; k < first + n; ++k) {
                             chunk.push_back(works[k].get());
                           }
                           co_await rotate_batch(c, chunk);
                         });
      for (auto& w : works) {
        reports.push_back(w->report);
      }
    }
    co_await prune();
    // The audit log keeps audit_retention of history (DESIGN §5).
    if (auto trimmed = store.trim_audit(now_seconds() - config.audit_retention); !trimmed) {
      log_store_error("audit trim", trimmed.error());
    } else if (*trimmed > 0) {
      util::log::debug("audit log: trimmed {} entries older than {}", *trimmed,
                       util::format_duration(config.audit_retention));
    }
    for (const auto& [name, c] : controllers) {
      if (!c.probe_error.empty()) {
        errors.push_back(c.probe_error);
      }
    }
    co_return PassResult{ std::move(reports), std::move(errors), {} };
  }
};

util::Result<std::unique_ptr<Engine>>
Engine::create(asio::any_io_executor executor, const config::Config& config, state::Store& store)
{
  auto impl = std::make_unique<Impl>(executor, config, store);
  std::map<std::string, crypto::PublicKey> keys;
  for (const auto& r : config.recipients) {
    auto key = crypto::PublicKey::load(r.path);
    if (!key) {
      return util::make_error("config", fmt::format("{}: recipients.{}: {}", r.mark.to_string(),
                                                    r.name, key.error().message));
    }
    keys.emplace(r.name, *key);
  }
  for (const auto& c : config.controllers) {
    auto o = client_options(config, c);
    if (!o) {
      return util::make_error("config", o.error().message);
    }
    auto client = net::Client::create(executor, std::move(*o));
    if (!client) {
      return util::make_error("config",
                              fmt::format("controller {}: {}", c.name, client.error().message));
    }
    ControllerEntry entry;
    entry.config = &c;
    entry.client = std::move(*client);
    impl->controllers.emplace(c.name, std::move(entry));
  }
  {
    auto tx = store.begin();
    if (!tx) {
      return tx.error();
    }
    for (const auto& u : config.users) {
      SlotEntry s;
      s.user = &u;
      s.slot_name = u.slot();
      auto id = store.ensure_slot(u.controller, config::fold_user_id(u.user), u.user);
      if (!id) {
        return id.error();
      }
      s.id = *id;
      auto sched = schedule::Schedule::parse(u.policy.schedule);
      auto zone = schedule::Zone::locate(u.policy.timezone);
      if (!sched || !zone) {
        return util::make_error("config", fmt::format("{}: schedule or zone", s.slot_name));
      }
      s.schedule = std::move(*sched);
      s.zone = *zone;
      for (const auto& sc : u.sinks) {
        SinkEntry e;
        e.config = &sc;
        auto sink = sinks::make_sink(sc, executor);
        if (!sink) {
          return util::make_error("config", fmt::format("{}: {}: {}", sc.mark.to_string(),
                                                        s.slot_name, sink.error().message));
        }
        e.sink = std::move(*sink);
        e.hash = sinks::config_hash(sc);
        for (const auto& name : sc.recipients) {
          const auto& key = keys.at(name);
          e.recipients.push_back(crypto::Recipient{ name, key });
          e.hash += ":" + key.key_id();
        }
        s.sinks.push_back(std::move(e));
      }
      impl->slots.push_back(std::move(s));
    }
    if (auto r = tx->commit(); !r) {
      return r.error();
    }
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl)
  : m_impl(std::move(impl))
{
}

Engine::~Engine() = default;

asio::awaitable<PassResult>
Engine::run_pass(PassOptions options)
{
  return m_impl->run_pass(std::move(options));
}

asio::awaitable<PassResult>
Engine::preview()
{
  return m_impl->preview_pass();
}

} // namespace app
