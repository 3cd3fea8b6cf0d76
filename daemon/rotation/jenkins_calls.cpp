// The pass's requests to Jenkins: each through the controller's jenkins::Api, timed and
// told to the observer.
#include "rotation/pass_impl.hpp"
#include "util/duration.hpp"
#include "util/log.hpp"

#include <boost/system/system_error.hpp>
#include <fmt/core.h>

#include <optional>
#include <span>

namespace rotation::detail {

namespace asio = boost::asio;

namespace {

} // namespace

void
Pass::observe_request(Lane& lane, RequestOp op, int status,
                      std::chrono::steady_clock::time_point start)
{
  if (m_observer) {
    m_observer->on_request(lane.name(), op, status,
                           std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start));
  }
}

// Probes a controller once per pass to pick the token API variant.
asio::awaitable<bool>
Pass::ensure_probed(Lane& lane)
{
  if (lane.variant) {
    co_return true;
  }
  if (!lane.probe_error.empty()) {
    co_return false;
  }
  if (is_self(lane)) {
    co_return co_await probe_self(lane); // REST as a user: no admin, no script
  }
  const auto& c = *lane.controller->config;
  const auto start = std::chrono::steady_clock::now();
  // A probe is a read: a stop cuts it short, with its connect retries against a controller
  // that is down (otherwise a stop waits for every retry and its back-off).
  std::optional<net::Result<jenkins::ProbeResult>> answer;
  try {
    answer = co_await m_core.stop.cancellable(lane.controller->api->probe());
  } catch (const boost::system::system_error& e) {
    if (!stopping()) {
      throw;
    }
  }
  if (!answer || (!*answer && stopping())) {
    lane.probe_error = fmt::format("controller {}: not contacted: stopping", c.name);
    co_return false;
  }
  auto& p = *answer;
  observe_request(lane, RequestOp::probe, status_of(p), start);
  if (lane.variant) {
    co_return true; // another batch of the lane probed meanwhile
  }
  if (!p) {
    lane.probe_error = p.error().message;
    util::log::error("controller {}: {}", c.name, lane.probe_error);
    co_return false;
  }
  if (!p->administer) {
    lane.probe_error =
      fmt::format("controller {}: {} lacks Overall/Administer", c.name, c.admin_user);
    co_return false;
  }
  lane.variant = jenkins::variant_of(*p);
  // Known to within half the probe's latency; whole seconds are plenty.
  const auto diff_ms = p->now_millis - p->local_millis;
  lane.skew = std::chrono::seconds((diff_ms + (diff_ms >= 0 ? 500 : -500)) / 1000);
  if (std::chrono::abs(*lane.skew) > k_skew_warning) {
    // Once per controller per pass (the probe runs once per lane and pass).
    util::log::warning("controller {}: Jenkins' clock is {} {} ours; token expiry is computed "
                       "on Jenkins' clock, but check time synchronisation on both hosts",
                       c.name, util::format_duration(std::chrono::abs(*lane.skew)),
                       *lane.skew > std::chrono::seconds(0) ? "ahead of" : "behind");
  }
  util::log::debug("controller {}: Jenkins {}, {} tokens, clock skew {}s", c.name, p->version,
                   jenkins::to_string(*lane.variant), lane.skew->count());
  if (m_observer) {
    m_observer->on_probe(c.name, { p->version, jenkins::to_string(*lane.variant), *lane.skew });
  }
  co_return true;
}

std::string
skew_note(const Lane& lane)
{
  if (!lane.skew || std::chrono::abs(*lane.skew) <= k_skew_warning) {
    return {};
  }
  return fmt::format("; Jenkins' clock is {} {} ours: a token may be refused as expired or not "
                     "yet valid, check time synchronisation on both hosts",
                     util::format_duration(std::chrono::abs(*lane.skew)),
                     *lane.skew > std::chrono::seconds(0) ? "ahead of" : "behind");
}

asio::awaitable<net::Result<jenkins::ListAnswer>>
Pass::list(Lane& lane, std::vector<std::string> users)
{
  const auto start = std::chrono::steady_clock::now();
  auto r = co_await lane.controller->api->list(std::move(users));
  observe_request(lane, RequestOp::list, status_of(r), start);
  co_return r;
}

asio::awaitable<net::Result<jenkins::MintAnswer>>
Pass::mint(Lane& lane, std::vector<jenkins::MintItem> items)
{
  const auto start = std::chrono::steady_clock::now();
  auto r = co_await lane.controller->api->mint(*lane.variant, std::move(items));
  observe_request(lane, RequestOp::mint, status_of(r), start);
  co_return r;
}

asio::awaitable<net::Result<void>>
Pass::verify(Lane& lane, const std::string& user, const crypto::SecretBytes& token)
{
  const auto start = std::chrono::steady_clock::now();
  auto r = co_await lane.controller->api->verify(user, token);
  observe_request(lane, RequestOp::verify, status_of(r), start);
  co_return r;
}

asio::awaitable<std::set<std::string>>
Pass::revoke(Lane& lane, std::vector<Revoke> items)
{
  std::set<std::string> gone;
  if (items.empty()) {
    co_return gone;
  }
  if (is_self(lane)) {
    co_return co_await revoke_self(lane, std::move(items)); // by uuid, as each user
  }
  if (!co_await ensure_probed(lane)) {
    for (const auto& item : items) {
      if (m_observer) {
        m_observer->on_revoke(lane.name(), item.user, item.reason, false);
      }
    }
    co_return gone;
  }
  co_await per_batch(
    lane, items.size(), [&](std::size_t first, std::size_t n) -> asio::awaitable<void> {
      const std::span<const Revoke> chunk(items.data() + first, n);
      std::vector<jenkins::RevokeItem> request;
      for (const auto& item : chunk) {
        request.push_back({ item.user, item.uuid });
      }
      const auto start = std::chrono::steady_clock::now();
      auto r = co_await lane.controller->api->revoke(*lane.variant, std::move(request));
      observe_request(lane, RequestOp::revoke, status_of(r), start);
      if (!r) {
        util::log::error("controller {}: revoke: {}", lane.name(), r.error().message);
      }
      for (std::size_t k = 0; k < n; ++k) {
        bool ok = false;
        if (r && k < r->items.size()) {
          const auto& item = r->items[k];
          ok = item.outcome == jenkins::RevokeOutcome::revoked ||
               item.outcome == jenkins::RevokeOutcome::not_found;
          if (!ok) {
            util::log::error("controller {}: revoke of a token of {}: {}", lane.name(),
                             chunk[k].user, item.error ? item.error->message : "failed");
          }
        }
        if (ok) {
          gone.insert(chunk[k].uuid);
        }
        if (m_observer) {
          m_observer->on_revoke(lane.name(), chunk[k].user, chunk[k].reason, ok);
        }
      }
    });
  co_return gone;
}

void
Pass::record_revoked(Lane& lane, const std::set<std::string>& gone)
{
  auto tx = begin(lane, "revoked");
  for (const auto& uuid : gone) {
    check(lane, store().mark_revoked(uuid, now()), "revoked");
  }
  commit(lane, tx, "revoked");
}

asio::awaitable<std::set<std::string>>
Pass::revoke_and_record(Lane& lane, std::vector<Revoke> items)
{
  auto gone = co_await revoke(lane, std::move(items));
  record_revoked(lane, gone);
  co_return gone;
}

} // namespace rotation::detail
