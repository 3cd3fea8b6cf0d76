#pragma once

#include "util/error.hpp"

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace net {

// Why an HTTP exchange with a controller failed. Callers switch on the kind; the
// message names the controller and never holds a secret.
enum class FailureKind
{
  unreachable,     // resolve/connect failed, the connection dropped, or the circuit is open
  tls,             // handshake failed or the peer's certificate was not trusted
  timeout,         // a step passed its deadline (idempotent requests only)
  http_status,     // an unexpected status; `status` holds it
  auth,            // 401: wrong admin_user or admin token
  forbidden,       // 403: `message` names the missing permission when Jenkins says it
  redirect,        // 3xx: `message` names the Location (often an SSO page in front of Jenkins)
  bad_output,      // an answer that is not HTTP, too large, or not what the caller expects
  outcome_unknown, // a non-idempotent request was sent and no usable answer came back
  script_error     // the Groovy script threw: `message` holds the first lines of the trace
};

// The stable word for a kind ("outcome_unknown"), used as util::Error::kind.
const char* to_string(FailureKind kind);

struct Failure
{
  FailureKind kind = FailureKind::unreachable;
  int status = 0; // the HTTP status when one came back, else 0
  std::string message;

  [[nodiscard]] util::Error to_error() const { return util::make_error(to_string(kind), message); }
};

// A controller's answer we cannot read: "<controller>: <what>", no HTTP status.
Failure bad_output(std::string_view controller, std::string_view what);

// Found by ADL from result<T, Failure>::value().
[[noreturn]] inline void
throw_exception_from_error(const Failure& f, const boost::source_location&)
{
  throw util::ErrorException(f.to_error());
}

template<typename T>
using Result = boost::system::result<T, Failure>;

} // namespace net
