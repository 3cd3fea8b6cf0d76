#include "jenkins/probe.hpp"

#include "jenkins/script.hpp"

#include <fmt/core.h>

#include <random>

namespace jenkins {

namespace {

constexpr std::size_t k_probe_body_limit = 64 * 1024;

net::Failure
bad_probe(const std::string& controller, const std::string& what)
{
  return net::bad_output(controller, fmt::format("the probe answer {}", what));
}

std::string
make_nonce()
{
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

std::int64_t
wall_millis()
{
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace

net::Result<ProbeResult>
parse_probe(const nlohmann::json& a, const std::string& nonce, const std::string& controller)
{
  if (!a.contains("nonce") || a["nonce"] != nonce) {
    return bad_probe(controller, "does not echo this request's nonce");
  }
  ProbeResult r;
  const auto str = [&](const char* key, std::string& out) {
    if (!a.contains(key) || !a[key].is_string()) {
      return false;
    }
    out = a[key].get<std::string>();
    return true;
  };
  const auto flag = [&](const char* key, bool& out) {
    if (!a.contains(key) || !a[key].is_boolean()) {
      return false;
    }
    out = a[key].get<bool>();
    return true;
  };
  if (!str("version", r.version) || !str("now", r.now) || !str("zone", r.zone)) {
    return bad_probe(controller, "lacks version, now or zone");
  }
  if (!a.contains("now_millis") || !a["now_millis"].is_number_integer()) {
    return bad_probe(controller, "lacks now_millis");
  }
  r.now_millis = a["now_millis"].get<std::int64_t>();
  if (!flag("expiring_tokens", r.expiring_tokens) || !flag("helpers", r.helpers) ||
      !flag("token_store", r.token_store) || !flag("administer", r.administer)) {
    return bad_probe(controller, "lacks a capability flag");
  }
  if (a.contains("usage_statistics") && a["usage_statistics"].is_boolean()) {
    r.usage_statistics = a["usage_statistics"].get<bool>();
  } else if (a.contains("usage_statistics") && !a["usage_statistics"].is_null()) {
    return bad_probe(controller, "has a usage_statistics that is not a boolean");
  }
  return r;
}

boost::asio::awaitable<net::Result<ProbeResult>>
probe(net::Client& client, std::optional<net::WipedString> authorization)
{
  const auto nonce = make_nonce();
  // Built outside the co_await: g++ 12 cannot put an initializer_list temporary into a
  // coroutine frame ("array used as initializer").
  nlohmann::json input;
  input["nonce"] = nonce;
  const auto start = std::chrono::steady_clock::now();
  const auto wall_start = wall_millis();
  auto answer = co_await post_script(client, "probe", input, true, k_probe_body_limit,
                                     std::move(authorization));
  const auto latency =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  const auto wall_end = wall_millis();
  if (!answer) {
    co_return answer.error();
  }
  auto json = decode_output(answer->text(), client.name());
  if (!json) {
    co_return json.error();
  }
  auto result = parse_probe(*json, nonce, client.name());
  if (!result) {
    co_return result.error();
  }
  if (!result->administer) {
    co_return net::Failure{ net::FailureKind::forbidden, 0,
                            fmt::format("{}: the admin user lacks hudson.model.Hudson.Administer "
                                        "(Overall/Administer)",
                                        client.name()) };
  }
  result->latency = latency;
  result->local_millis = wall_start + (wall_end - wall_start) / 2;
  co_return std::move(*result);
}

} // namespace jenkins
