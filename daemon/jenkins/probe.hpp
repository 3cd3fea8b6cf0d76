#pragma once

#include "net/http_client.hpp"

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace jenkins {

// What a controller is and can do, found by running the probe script (DESIGN §2.3).
struct ProbeResult
{
  std::string version;          // Jenkins.VERSION
  std::int64_t now_millis = 0;  // Jenkins' clock, epoch milliseconds
  std::string now;              // the same instant, ISO 8601 in Jenkins' zone
  std::string zone;             // ZoneId.systemDefault()
  bool expiring_tokens = false; // ApiTokenProperty.generateNewToken(String, LocalDate): 2.548+
  bool helpers = false;         // ApiTokenProperty.generateNewToken(String)/revokeToken: 2.260+
  bool token_store = false;     // ApiTokenStore exists: 2.129+
  std::optional<bool> usage_statistics; // nullopt: Jenkins does not say
  bool administer = false;              // the caller holds Overall/Administer
  std::chrono::milliseconds latency{ 0 };
  std::int64_t local_millis = 0; // our clock at the middle of the exchange
};

// Runs the probe script (idempotent, retried per the client's policy). Errors: every
// net failure, script_error, bad_output; forbidden when the caller lacks Administer.
// `authorization` (a Basic header of another admin token) replaces the client's own: the
// check that a new admin token holds Administer before the daemon switches to it.
boost::asio::awaitable<net::Result<ProbeResult>> probe(
  net::Client& client, std::optional<net::WipedString> authorization = std::nullopt);

// Checks and reads the probe script's answer; `nonce` must come back unchanged.
net::Result<ProbeResult> parse_probe(const nlohmann::json& answer, const std::string& nonce,
                                     const std::string& controller);

} // namespace jenkins
