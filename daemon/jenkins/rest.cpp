#include "jenkins/rest.hpp"

#include "crypto/base64.hpp"
#include "jenkins/tokens.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace jenkins {

namespace {

using net::bad_output;

// Percent-encodes everything but RFC 3986's unreserved characters: user ids go into the
// path and the form, never as raw text.
std::string
encode(std::string_view text)
{
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string
endpoint(const std::string& user, std::string_view method)
{
  return fmt::format("user/{}/descriptorByName/jenkins.security.ApiTokenProperty/{}", encode(user),
                     method);
}

// One POST of a form as `user`; `secret` (if any) is appended to the form in wiped memory.
boost::asio::awaitable<net::Result<net::Response>>
post_as(net::Client& client, const std::string& user, const crypto::SecretBytes& as,
        std::string_view method, std::string form, bool idempotent,
        const crypto::SecretBytes* secret = nullptr, std::string_view secret_key = {})
{
  auto auth = basic_authorization(user, as);
  if (!auth) {
    co_return net::Failure{ net::FailureKind::bad_output, 0, auth.error().message };
  }
  auto request = net::Request::post_form(endpoint(user, method), std::move(form), idempotent);
  request.authorization = std::move(*auth);
  if (secret != nullptr) {
    // The token values we make are "11" + hex: nothing to percent-encode.
    net::WipedString body(request.body.begin(), request.body.end());
    body.append(body.empty() ? "" : "&");
    body.append(secret_key);
    body.append("=");
    body.append(reinterpret_cast<const char*>(secret->data()), secret->size());
    request.secret_body = std::move(body);
  }
  co_return co_await client.request(std::move(request));
}

// Jenkins answers the JSON web methods with 200 and {"status":"error","message":…}.
net::Result<nlohmann::json>
ok_data(const net::Response& answer, const std::string& controller, std::string_view method)
{
  const auto doc = nlohmann::json::parse(answer.text(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("status") ||
      !doc["status"].is_string()) {
    return bad_output(controller, fmt::format("{} did not answer a JSON status", method));
  }
  if (doc["status"] != "ok") {
    const auto message = doc.contains("message") && doc["message"].is_string()
                           ? doc["message"].get<std::string>()
                           : "";
    return bad_output(controller, fmt::format("{} answered an error: {}", method, message));
  }
  if (doc.contains("data")) {
    return net::Result<nlohmann::json>(boost::system::in_place_value, doc["data"]);
  }
  return net::Result<nlohmann::json>(boost::system::in_place_value, nlohmann::json::object());
}

} // namespace

std::optional<int>
version_number(const std::string& version)
{
  int major = 0;
  int minor = 0;
  char dot = 0;
  if (std::sscanf(version.c_str(), "%d%c%d", &major, &dot, &minor) != 3 || dot != '.' ||
      major < 1 || minor < 0 || minor > 999) {
    return std::nullopt;
  }
  return major * 1000 + minor;
}

util::Result<net::WipedString>
basic_authorization(const std::string& user, const crypto::SecretBytes& token)
{
  // "user:token" and its base64 stay in locked memory; the header copy is wiped.
  auto pair = crypto::SecretBytes::allocate(user.size() + 1 + token.size());
  if (!pair) {
    return pair.error();
  }
  std::memcpy(pair->data(), user.data(), user.size());
  pair->data()[user.size()] = ':';
  std::memcpy(pair->data() + user.size() + 1, token.data(), token.size());
  auto encoded = crypto::to_base64_secret(pair->view());
  if (!encoded) {
    return encoded.error();
  }
  net::WipedString header;
  header.reserve(6 + encoded->size());
  header.append("Basic ");
  header.append(reinterpret_cast<const char*>(encoded->data()), encoded->size());
  return header;
}

boost::asio::awaitable<net::Result<RestProbe>>
rest_probe(net::Client& client, const std::string& user, const crypto::SecretBytes& token)
{
  auto auth = basic_authorization(user, token);
  if (!auth) {
    co_return net::Failure{ net::FailureKind::bad_output, 0, auth.error().message };
  }
  auto request = net::Request::get("whoAmI/api/json");
  request.authorization = std::move(*auth);
  auto answer = co_await client.request(std::move(request));
  if (!answer) {
    auto f = answer.error();
    if (f.kind == net::FailureKind::auth) {
      f.message = fmt::format("{}: Jenkins refused the token the daemon keeps for {} (401)",
                              client.name(), user);
    }
    co_return f;
  }
  const auto doc = nlohmann::json::parse(answer->text(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("name") || !doc["name"].is_string()) {
    co_return bad_output(client.name(), "/whoAmI/api/json did not answer JSON");
  }
  auto name = doc["name"].get<std::string>();
  auto fold = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return s;
  };
  if (fold(name) != fold(user)) {
    co_return bad_output(client.name(),
                         fmt::format("/whoAmI named \"{}\", not \"{}\": the token the daemon "
                                     "keeps for {} does not log in",
                                     name, user, user));
  }
  const auto number = version_number(answer->jenkins_version);
  if (!number) {
    co_return bad_output(client.name(),
                         "/whoAmI/api/json came without an X-Jenkins version header: is this "
                         "Jenkins?");
  }
  co_return RestProbe{ answer->jenkins_version, *number >= 2260, *number >= 2548 };
}

boost::asio::awaitable<net::Result<std::string>>
add_fixed_token(net::Client& client, const std::string& user, const crypto::SecretBytes& as,
                const std::string& name, const crypto::SecretBytes& value,
                const std::optional<std::string>& expiration_day)
{
  std::string form = "newTokenName=" + encode(name);
  if (expiration_day) {
    form += "&expirationDuration=custom&tokenExpiration=" + encode(*expiration_day);
  }
  auto answer = co_await post_as(client, user, as, "addFixedToken", std::move(form), false, &value,
                                 "newTokenPlainValue");
  if (!answer) {
    co_return answer.error();
  }
  auto data = ok_data(*answer, client.name(), "addFixedToken");
  if (!data) {
    co_return data.error();
  }
  if (!data->is_object() || !data->contains("tokenUuid") || !(*data)["tokenUuid"].is_string() ||
      (*data)["tokenUuid"].get<std::string>().empty()) {
    co_return bad_output(client.name(), "addFixedToken answered no tokenUuid");
  }
  co_return (*data)["tokenUuid"].get<std::string>();
}

boost::asio::awaitable<net::Result<void>>
rest_revoke(net::Client& client, const std::string& user, const crypto::SecretBytes& as,
            const std::string& uuid)
{
  auto answer = co_await post_as(client, user, as, "revoke", "tokenUuid=" + encode(uuid), true);
  if (!answer) {
    co_return answer.error();
  }
  co_return net::Result<void>{};
}

boost::asio::awaitable<net::Result<void>>
rest_revoke_all_except(net::Client& client, const std::string& user, const crypto::SecretBytes& as,
                       const std::string& keep_uuid)
{
  auto answer =
    co_await post_as(client, user, as, "revokeAllExcept", "tokenUuid=" + encode(keep_uuid), true);
  if (!answer) {
    co_return answer.error();
  }
  co_return net::Result<void>{};
}

} // namespace jenkins
