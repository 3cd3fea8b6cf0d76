#pragma once

#include "config/config.hpp"
#include "crypto/public_key.hpp"
#include "state/store.hpp"
#include "util/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace app {

// What one pass did to one slot, for `once`'s summary and the logs.
struct SlotReport
{
  std::string slot;   // controller/user
  std::string result; // committed | delivering | failed | abandoned | not due | error
  std::optional<std::chrono::seconds> old_age; // age of the token it replaced
  std::string new_token;                       // the new token's name
  int sinks_ok = 0;
  int sinks_total = 0;
  std::optional<state::Time> previous_retires;
  std::string message; // the error, when there is one; never a secret
};

// What one pass did: a report per slot it touched, and errors that are not one slot's
// (a controller that cannot be reached, a stale database).
struct PassResult
{
  std::vector<SlotReport> slots;
  std::vector<std::string> errors;
  std::vector<std::string> preview; // preview(): one line per action it would take
};

struct PassOptions
{
  bool force = false;                     // rotate every slot, due or not
  std::vector<const config::User*> named; // rotate these, due or not
  // Rotate only `named` (or every slot with `force`): the daemon's scheduler has decided
  // what is due. With nothing named the pass resumes, reconciles and prunes.
  bool only_named = false;
};

// The rotation engine (DESIGN §2): plans due slots, mints in batches per controller,
// seals for every sink and persists, verifies, delivers, commits, then prunes. One
// SQLite transaction per batch step. Runs on one io_context thread.
class Engine
{
public:
  // Loads the recipients' public keys and builds one client and the sinks per controller.
  // Errors: a key file that does not parse ("config"), a sink that cannot be made.
  static util::Result<std::unique_ptr<Engine>> create(boost::asio::any_io_executor executor,
                                                      const config::Config& config,
                                                      state::Store& store);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One pass: resumes open attempts, rotates the due (or named) slots, prunes. Returns a
  // report per slot it touched; slots that were not due are left out unless named.
  boost::asio::awaitable<PassResult> run_pass(PassOptions options);

  // What reconcile and prune would do now (plan --connect): lists Jenkins' tokens but
  // revokes nothing and changes no state. Errors are the controllers' (unreachable,
  // stale database).
  boost::asio::awaitable<PassResult> preview();

  struct Impl;

private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

} // namespace app
