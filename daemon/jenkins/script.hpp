#pragma once

#include "net/failure.hpp"
#include "net/http_client.hpp"
#include "util/error.hpp"

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

// The calling convention of every Groovy script (DESIGN §1.4): constant text whose one
// placeholder '@@PAYLOAD@@' receives base64 of a JSON document, and one output line
// `JTR-RESULT:<base64 of a JSON document>`.
namespace jenkins {

constexpr std::string_view k_payload_placeholder = "@@PAYLOAD@@";
constexpr std::string_view k_result_marker = "JTR-RESULT:";

// The embedded script named `name` (a file stem under daemon/jenkins/scripts/) with
// `input` substituted; only base64 characters are ever inserted. Errors: unknown name, a
// script without exactly one placeholder (a bug, caught by the unit tests), or a string
// in `input` that is not UTF-8 (bad_input).
util::Result<std::string> render_script(std::string_view name, const nlohmann::json& input);

// The form body of POST /scriptText for `script` (application/x-www-form-urlencoded).
std::string script_form(std::string_view script);

// Posts the embedded script `name` with `input` to /scriptText and returns the raw
// answer, whose body may carry secrets (decode it in place). `idempotent` picks the
// retry class (DESIGN §2.2). Errors: every net failure.
boost::asio::awaitable<net::Result<net::Response>> post_script(
  net::Client& client, std::string_view name, const nlohmann::json& input, bool idempotent,
  std::size_t body_limit, std::optional<net::WipedString> authorization = std::nullopt);

// Decodes a script console answer: the JSON of its one JTR-RESULT line; other output and
// `Result:` lines are ignored. No marker and a stack trace: script_error with the trace's
// first lines; otherwise bad_output. `controller` names the place in messages.
net::Result<nlohmann::json> decode_output(std::string_view output, const std::string& controller);

} // namespace jenkins
