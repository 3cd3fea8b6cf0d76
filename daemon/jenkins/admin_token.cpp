#include "jenkins/admin_token.hpp"

#include "jenkins/script.hpp"
#include "jenkins/tokens.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <array>

namespace jenkins {

namespace {

constexpr std::size_t k_answer_limit = 1024 * 1024;

net::Failure
bad_find(const std::string& controller, const std::string& what)
{
  return net::bad_output(controller, fmt::format("find_token: {}", what));
}

} // namespace

TokenHash
token_hash(const crypto::SecretBytes& token)
{
  TokenHash out;
  const auto* p = token.data();
  std::size_t n = token.size();
  if (n == k_token_length) {
    // Jenkins drops the two version characters without checking them.
    p += 2;
    n -= 2;
  } else {
    out.legacy = true;
  }
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), p, n);
  out.hex.reserve(64);
  for (const auto b : digest) {
    out.hex += fmt::format("{:02x}", b);
  }
  return out;
}

boost::asio::awaitable<net::Result<std::vector<TokenMatch>>>
find_token(net::Client& client, std::string user, TokenHash hash)
{
  nlohmann::json input;
  input["user"] = user;
  input["hash"] = hash.hex;
  input["legacy"] = hash.legacy;
  auto answer = co_await post_script(client, "find_token", input, true, k_answer_limit);
  if (!answer) {
    co_return answer.error();
  }
  auto doc = decode_output(answer->text(), client.name());
  if (!doc) {
    co_return doc.error();
  }
  if (doc->contains("error")) {
    const auto message = doc->value("message", std::string());
    co_return bad_find(client.name(), fmt::format("user \"{}\": {} ({})", user,
                                                  doc->value("error", std::string()), message));
  }
  if (!doc->contains("matches") || !(*doc)["matches"].is_array()) {
    co_return bad_find(client.name(), "no list of matches");
  }
  std::vector<TokenMatch> out;
  for (const auto& m : (*doc)["matches"]) {
    if (!m.is_object() || !m.contains("uuid") || !m["uuid"].is_string() || !m.contains("name") ||
        !m["name"].is_string()) {
      co_return bad_find(client.name(), "a match without uuid and name");
    }
    out.push_back(TokenMatch{ m["uuid"].get<std::string>(), m["name"].get<std::string>() });
  }
  co_return out;
}

} // namespace jenkins
