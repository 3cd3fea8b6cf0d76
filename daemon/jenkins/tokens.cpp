#include "jenkins/tokens.hpp"

#include "crypto/base64.hpp"
#include "jenkins/probe.hpp"
#include "jenkins/script.hpp"
#include "net/http_client.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace jenkins {

namespace {

// A mint answer is a few hundred bytes per item; this bounds a batch of 500 generously.
constexpr std::size_t k_script_body_limit = 8 * 1024 * 1024;
constexpr std::string_view k_token_marker = "JTR-TOKEN:";

using net::bad_output;

std::optional<std::int64_t>
opt_int(const nlohmann::json& j, const char* key)
{
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) {
    return std::nullopt;
  }
  return it->get<std::int64_t>();
}

// A boolean that may be absent (false); nullopt when it is there but not a boolean
// (json's value() would throw type_error instead).
std::optional<bool>
opt_flag(const nlohmann::json& j, const char* key)
{
  const auto it = j.find(key);
  if (it == j.end()) {
    return false;
  }
  if (!it->is_boolean()) {
    return std::nullopt;
  }
  return it->get<bool>();
}

std::string
str(const nlohmann::json& j, const char* key)
{
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

net::Result<Clock>
read_clock(const nlohmann::json& doc, const std::string& controller)
{
  Clock c;
  c.version = str(doc, "version");
  c.zone = str(doc, "zone");
  const auto now = opt_int(doc, "now_ms");
  if (c.version.empty() || c.zone.empty() || !now) {
    return bad_output(controller, "the script answer lacks version, now_ms or zone");
  }
  c.now_ms = *now;
  return c;
}

// What every batch answer shares: its JSON, Jenkins' clock, and the array `key` with one
// object per request item whose `index` is its position, so no outcome can land on
// another item. `what` names the script in messages.
struct Decoded
{
  nlohmann::json doc;
  Clock clock;
};

net::Result<Decoded>
decode_answer(std::string_view output, const char* key, std::size_t count,
              const std::string& controller, std::string_view what)
{
  auto doc = decode_output(output, controller);
  if (!doc) {
    return doc.error();
  }
  auto clock = read_clock(*doc, controller);
  if (!clock) {
    return clock.error();
  }
  const auto it = doc->find(key);
  if (it == doc->end() || !it->is_array() || it->size() != count) {
    return bad_output(controller,
                      fmt::format("the {} answer does not have one entry per request item", what));
  }
  for (std::size_t i = 0; i < count; ++i) {
    const auto& j = (*it)[i];
    if (!j.is_object() || opt_int(j, "index") != static_cast<std::int64_t>(i)) {
      return bad_output(controller, fmt::format("the {} answer's items are out of order", what));
    }
  }
  return Decoded{ std::move(*doc), *clock };
}

std::optional<ItemError>
read_item_error(const nlohmann::json& item)
{
  if (!item.contains("error")) {
    return std::nullopt;
  }
  return ItemError{ str(item, "error"), str(item, "message") };
}

bool
is_token(const char* p)
{
  if (p[0] != '1' || p[1] != '1') {
    return false;
  }
  for (std::size_t i = 2; i < k_token_length; ++i) {
    const char c = p[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// Finds the "JTR-TOKEN:<index>:<token>" lines of a mint answer and copies each token
// straight from the (wiped) body into locked memory: no std::string ever holds one.
net::Result<std::vector<std::optional<crypto::SecretBytes>>>
read_tokens(const net::Response& response, std::size_t count, const std::string& controller)
{
  std::vector<std::optional<crypto::SecretBytes>> tokens(count);
  const char* data = response.body.data();
  const std::size_t size = response.body.size();
  std::size_t pos = 0;
  while (pos < size) {
    const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', size - pos));
    const std::size_t end = nl ? static_cast<std::size_t>(nl - data) : size;
    std::string_view line(data + pos, end - pos);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.starts_with(k_token_marker)) {
      line.remove_prefix(k_token_marker.size());
      const auto colon = line.find(':');
      std::size_t index = 0;
      const bool index_ok = colon != std::string_view::npos && colon > 0 && colon < 6 &&
                            std::all_of(line.begin(), line.begin() + static_cast<long>(colon),
                                        [](char c) { return c >= '0' && c <= '9'; });
      if (index_ok) {
        for (std::size_t i = 0; i < colon; ++i) {
          index = index * 10 + static_cast<std::size_t>(line[i] - '0');
        }
      }
      const auto value = index_ok ? line.substr(colon + 1) : std::string_view();
      if (!index_ok || index >= count || value.size() != k_token_length ||
          !is_token(value.data()) || tokens[index]) {
        // Never quote the line: it may hold a token.
        return bad_output(controller, "the mint answer holds a malformed JTR-TOKEN line");
      }
      auto secret = crypto::SecretBytes::allocate(k_token_length);
      if (!secret) {
        return net::Failure{ net::FailureKind::bad_output, 0,
                             fmt::format("{}: {}", controller, secret.error().message) };
      }
      std::memcpy(secret->data(), value.data(), k_token_length);
      tokens[index] = std::move(*secret);
    }
    pos = end + 1;
  }
  return tokens;
}

} // namespace

Variant
variant_of(const ProbeResult& probe)
{
  if (probe.expiring_tokens) {
    return Variant::expiring;
  }
  return probe.helpers ? Variant::helpers : Variant::store;
}

const char*
to_string(Variant variant)
{
  switch (variant) {
    case Variant::expiring:
      return "expiring";
    case Variant::helpers:
      return "helpers";
    case Variant::store:
      return "store";
  }
  return "store";
}

net::Result<MintAnswer>
read_mint_answer(const net::Response& answer, std::size_t count, const std::string& controller)
{
  auto decoded = decode_answer(answer.text(), "items", count, controller, "mint");
  if (!decoded) {
    return decoded.error();
  }
  auto tokens = read_tokens(answer, count, controller);
  if (!tokens) {
    return tokens.error();
  }
  const auto& items = decoded->doc["items"];
  MintAnswer out;
  out.clock = decoded->clock;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& j = items[i];
    MintResult r;
    r.error = read_item_error(j);
    const auto uuid = str(j, "uuid");
    const bool has_token = (*tokens)[i].has_value();
    // A token without a uuid, a uuid without a token, or a token beside an error: a
    // token may exist that this answer cannot account for. The whole answer is then
    // bad_output, so the caller looks every name up and revokes what it finds
    // (DESIGN §1, invariant 2) instead of dropping one item.
    if (r.error ? (has_token || !uuid.empty()) : (uuid.empty() || !has_token)) {
      return bad_output(
        controller, fmt::format("the mint answer's item {} does not match its JTR-TOKEN lines", i));
    }
    if (!r.error) {
      Minted m;
      m.uuid = uuid;
      m.token = std::move(*(*tokens)[i]);
      m.jenkins_expires_ms = opt_int(j, "jenkins_expires_ms");
      m.jenkins_expires = str(j, "jenkins_expires");
      r.minted = std::move(m);
    }
    out.items.push_back(std::move(r));
  }
  return out;
}

boost::asio::awaitable<net::Result<MintAnswer>>
mint(net::Client& client, Variant variant, std::span<const MintItem> items)
{
  nlohmann::json input = { { "variant", to_string(variant) },
                           { "items", nlohmann::json::array() } };
  for (const auto& item : items) {
    input["items"].push_back({ { "user", item.user },
                               { "name", item.name },
                               { "lifetime_ms", item.lifetime.count() * 1000 } });
  }
  // Not idempotent: a lost answer is outcome_unknown, never a blind retry (DESIGN §2.2).
  auto answer = co_await post_script(client, "mint", input, false, k_script_body_limit);
  if (!answer) {
    co_return answer.error();
  }
  co_return read_mint_answer(*answer, items.size(), client.name());
}

net::Result<ListAnswer>
read_list_answer(std::string_view output, std::span<const std::string> users,
                 const std::string& controller)
{
  auto decoded = decode_answer(output, "users", users.size(), controller, "list");
  if (!decoded) {
    return decoded.error();
  }
  const auto& doc = decoded->doc;
  ListAnswer out;
  out.clock = decoded->clock;
  if (const auto s = doc.find("usage_statistics"); s != doc.end() && s->is_boolean()) {
    out.usage_statistics = s->get<bool>();
  }
  const auto& entries = doc["users"];
  for (std::size_t i = 0; i < users.size(); ++i) {
    const auto& j = entries[i];
    UserTokens u;
    u.user = users[i];
    u.error = read_item_error(j);
    if (const auto t = j.find("tokens"); !u.error && t != j.end() && t->is_array()) {
      for (const auto& tj : *t) {
        if (!tj.is_object()) {
          return bad_output(controller, "the list answer holds a token that is not an object");
        }
        TokenInfo info;
        info.uuid = str(tj, "uuid");
        info.name = str(tj, "name");
        info.created_ms = opt_int(tj, "created_ms");
        if (const auto e = tj.find("expiration"); e != tj.end() && e->is_string()) {
          info.expiration = e->get<std::string>();
        }
        const auto expired = opt_flag(tj, "expired");
        const auto legacy = opt_flag(tj, "legacy");
        if (!expired || !legacy) {
          // expired decides what is pruned and when a slot is due: never guess it.
          return bad_output(controller, fmt::format("the list answer holds a token of user {} "
                                                    "whose expired or legacy is not a boolean",
                                                    users[i]));
        }
        info.expired = *expired;
        info.use_counter = static_cast<int>(opt_int(tj, "use_counter").value_or(0));
        info.last_use_ms = opt_int(tj, "last_use_ms");
        info.legacy = *legacy;
        u.tokens.push_back(std::move(info));
      }
    } else if (!u.error) {
      u.error = ItemError{ "missing", "the answer lists no tokens for this user" };
    }
    out.users.push_back(std::move(u));
  }
  return out;
}

boost::asio::awaitable<net::Result<ListAnswer>>
list(net::Client& client, std::span<const std::string> users)
{
  nlohmann::json input = { { "users", nlohmann::json::array() } };
  for (const auto& u : users) {
    input["users"].push_back(u);
  }
  auto answer = co_await post_script(client, "list", input, true, k_script_body_limit);
  if (!answer) {
    co_return answer.error();
  }
  co_return read_list_answer(answer->text(), users, client.name());
}

net::Result<RevokeAnswer>
read_revoke_answer(std::string_view output, std::size_t count, const std::string& controller)
{
  auto decoded = decode_answer(output, "items", count, controller, "revoke");
  if (!decoded) {
    return decoded.error();
  }
  const auto& items = decoded->doc["items"];
  RevokeAnswer out;
  out.clock = decoded->clock;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& j = items[i];
    RevokeResult r;
    r.error = read_item_error(j);
    const auto outcome = str(j, "outcome");
    if (r.error) {
      r.outcome = RevokeOutcome::failed;
    } else if (outcome == "revoked") {
      r.outcome = RevokeOutcome::revoked;
    } else if (outcome == "not_found") {
      r.outcome = RevokeOutcome::not_found;
    } else {
      r.outcome = RevokeOutcome::failed;
      r.error = ItemError{ "missing", "no outcome for this item" };
    }
    out.items.push_back(std::move(r));
  }
  return out;
}

boost::asio::awaitable<net::Result<RevokeAnswer>>
revoke(net::Client& client, Variant variant, std::span<const RevokeItem> items)
{
  nlohmann::json input = {
    { "variant", variant == Variant::store ? "store" : "helpers" },
    { "items", nlohmann::json::array() },
  };
  for (const auto& item : items) {
    input["items"].push_back({ { "user", item.user }, { "uuid", item.uuid } });
  }
  // Revoking by uuid twice is harmless: the second finds nothing (idempotent).
  auto answer = co_await post_script(client, "revoke", input, true, k_script_body_limit);
  if (!answer) {
    co_return answer.error();
  }
  co_return read_revoke_answer(answer->text(), items.size(), client.name());
}

boost::asio::awaitable<net::Result<void>>
verify(net::Client& client, const std::string& user, const crypto::SecretBytes& token)
{
  // "user:token" and its base64 stay in locked memory; the header copy is wiped.
  auto pair = crypto::SecretBytes::allocate(user.size() + 1 + token.size());
  if (!pair) {
    co_return net::Failure{ net::FailureKind::bad_output, 0, pair.error().message };
  }
  std::memcpy(pair->data(), user.data(), user.size());
  pair->data()[user.size()] = ':';
  std::memcpy(pair->data() + user.size() + 1, token.data(), token.size());
  auto encoded = crypto::to_base64_secret(pair->view());
  if (!encoded) {
    co_return net::Failure{ net::FailureKind::bad_output, 0, encoded.error().message };
  }
  net::WipedString header;
  header.reserve(6 + encoded->size());
  header.append("Basic ");
  header.append(reinterpret_cast<const char*>(encoded->data()), encoded->size());
  auto request = net::Request::get("whoAmI/api/json");
  request.authorization = std::move(header);
  request.verification = true;
  auto answer = co_await client.request(std::move(request));
  if (!answer) {
    auto f = answer.error();
    if (f.kind == net::FailureKind::auth) {
      f.message = fmt::format("{}: Jenkins refused the new token of {} (401)", client.name(), user);
    } else if (f.status == 500) {
      f.message = fmt::format("{}: Jenkins answered 500 to a login as {}: is the user in the "
                              "security realm?",
                              client.name(), user);
    }
    co_return f;
  }
  const auto doc = nlohmann::json::parse(answer->text(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    co_return bad_output(client.name(), "/whoAmI/api/json did not answer JSON");
  }
  // whoAmI answers anonymous requests too: only the name proves the token worked.
  const auto name = str(doc, "name");
  // Jenkins compares ids case-insensitively (IdStrategy.CASE_INSENSITIVE).
  const auto fold = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return s;
  };
  if (fold(name) != fold(user)) {
    co_return bad_output(client.name(),
                         fmt::format("/whoAmI named \"{}\", not \"{}\"", name, user));
  }
  co_return net::Result<void>{};
}

} // namespace jenkins
