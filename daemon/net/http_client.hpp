#pragma once

#include "crypto/secret_bytes.hpp"
#include "net/failure.hpp"
#include "net/wiping_allocator.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// An HTTPS client for one Jenkins controller, or (jenkins = false) for one plain HTTPS
// endpoint such as an http sink. Plain header on purpose: Beast and OpenSSL stay in
// http_client.cpp (DESIGN §11: each Beast TU costs ~30 s to build).
namespace net {

struct RetryPolicy
{
  int attempts = 5; // tries in all, for requests that may be retried
  std::chrono::milliseconds initial{ 2000 };
  std::chrono::milliseconds max{ 300000 };
};

struct ClientOptions
{
  std::string name;       // the controller's name, for messages
  std::string url;        // base URL, http(s)://host[:port]/prefix/
  std::string admin_user; // preemptive Basic auth (Jenkins sends no WWW-Authenticate);
  // empty admin_user: no Authorization header of our own. Locked memory (read_token_file);
  // Client::create builds the header from it without a std::string copy and frees it.
  crypto::SecretBytes admin_token;
  // Jenkins conventions: refetch a crumb on the CrumbFilter's 403, and explain 401, 403
  // and 3xx in terms of admin_user and SSO pages. Off for endpoints that are not Jenkins.
  bool jenkins = true;
  std::string ca_file;                        // empty: the system store
  bool allow_http = false;                    // the config allowed http (loopback or insecure_http)
  std::chrono::milliseconds timeout{ 30000 }; // deadline of each step
  int max_concurrent = 4;
  // Requests marked `verification` (a GET as a user, no script) in flight, counted apart
  // from max_concurrent: they cost Jenkins a token check, not a Groovy run.
  int verify_concurrent = 16;
  RetryPolicy retry;
  std::size_t body_limit = 16 * 1024 * 1024;
  int circuit_threshold = 5; // consecutive connect failures that open the circuit
  std::chrono::milliseconds circuit_cool_down{ 60000 };
  std::chrono::milliseconds pool_idle{ 4000 }; // Winstone closes idle connections after 5 s
};

enum class Method
{
  get,
  post,
  put
};

// A header a caller adds to one request. The value may be a credential (an http sink's
// `Authorization` from `${file:}`): it is wiped when released and never logged.
struct Header
{
  std::string name;
  WipedString value;
};

struct Request
{
  Method method = Method::get;
  std::string target; // relative to the base URL: "scriptText", "crumbIssuer/api/json"
  std::string content_type;
  std::string body;
  // Sent instead of `body` when set: a form that carries a secret (addFixedToken's
  // newTokenPlainValue, auth: self); wiped when released, never logged.
  std::optional<WipedString> secret_body;
  // DESIGN §2.2: idempotent requests retry on connect errors, timeouts and 502/503/504;
  // the others only when provably nothing was sent, and get outcome_unknown otherwise.
  bool idempotent = true;
  std::optional<std::size_t> body_limit; // overrides ClientOptions::body_limit
  // Replaces the admin's Authorization header (verifying a new token as its user).
  // Wiped when released; such a request never fetches a crumb for the admin.
  std::optional<WipedString> authorization;
  // Counts against ClientOptions::verify_concurrent instead of max_concurrent.
  bool verification = false;
  // Set after ours, replacing a header of the same name (Content-Type, Authorization).
  // Names for which is_framing_header() holds are skipped: the client owns framing.
  std::vector<Header> headers;

  // An idempotent GET of `target`.
  static Request get(std::string target)
  {
    Request r;
    r.target = std::move(target);
    return r;
  }
  // A POST of a form body; `idempotent` says whether running it twice is harmless.
  static Request post_form(std::string target, std::string body, bool idempotent)
  {
    Request r;
    r.method = Method::post;
    r.target = std::move(target);
    r.content_type = "application/x-www-form-urlencoded";
    r.body = std::move(body);
    r.idempotent = idempotent;
    return r;
  }
};

struct Response
{
  int status = 0;
  std::string content_type;
  WipedBytes body;  // wiped when released: a mint's answer carries plain tokens
  int attempts = 0; // how many times the request was sent or tried
  // Jenkins' `X-Jenkins` header (its version), empty when absent: the REST path of
  // `auth: self` learns the version from it, having no script console to ask.
  std::string jenkins_version;

  [[nodiscard]] std::string_view text() const { return { body.data(), body.size() }; }
};

// Reads an admin token file with crypto::read_secret_file (a regular file not readable by
// group or others, at most 4 KiB): trailing CR/LF stripped, no whitespace or control
// characters. The value stays in locked memory and is never logged; errors name the file.
util::Result<crypto::SecretBytes> read_token_file(const std::string& path);

// "Basic base64(user:token)" in a wiped buffer, built in locked memory. Errors: out of
// locked memory.
util::Result<WipedString> basic_authorization(const std::string& user,
                                              const crypto::SecretBytes& token);

// True for the headers that frame a message or its connection (Host, Content-Length,
// Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade), any case: the client
// sets them itself, so a caller's are skipped and a config should refuse them.
bool is_framing_header(std::string_view name);

// Splits an absolute http(s) URL into the base URL a Client takes
// ("https://host:port/") and a Request target (path and query, without the leading
// '/'), so one Client can send to exactly that URL. Errors name the URL.
Result<std::pair<std::string, std::string>> split_url(const std::string& url);

class Client
{
public:
  // Validates the URL and builds the TLS context (ca_file or the system store).
  static Result<std::unique_ptr<Client>> create(boost::asio::any_io_executor executor,
                                                ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one request (auth, crumb, retries, concurrency limit) and returns a 2xx
  // answer, or a Failure. The Client must outlive the coroutine.
  boost::asio::awaitable<Result<Response>> request(Request request);

  [[nodiscard]] const std::string& name() const;

  // Authenticates every later request as admin_user with `token` (a rotated admin token).
  // Requests already sent keep the header they had. Errors: no admin_user, out of memory.
  util::Result<void> set_admin_token(const crypto::SecretBytes& token);

  struct Impl;

private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

} // namespace net
