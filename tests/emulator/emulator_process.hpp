#pragma once

// The Jenkins emulator (tests/jenkins-emulator) as a child process of a doctest, plus a
// net::Client on 127.0.0.1 that drives both the jenkins:: functions under test and the
// emulator's control API (/__emu/*) with the admin's API token.

#include "jenkins/tokens.hpp"
#include "net/http_client.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace test_emu {

struct Options
{
  std::string version = "2.560";
  std::string timezone; // empty: the JVM's default
  std::vector<std::string> users;
};

// Why the emulator cannot run here (no JDK or no Groovy), or empty when it can.
std::string missing_tools();

class EmulatorProcess
{
public:
  // Starts the emulator in a fresh data directory and waits for its JSON line.
  explicit EmulatorProcess(Options options);
  ~EmulatorProcess();
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  // Stops (SIGTERM) and starts again on the same data directory; the client follows.
  void restart();

  // Runs one coroutine on this fixture's io_context to completion.
  template<typename T>
  T run(boost::asio::awaitable<T> work)
  {
    std::optional<T> out;
    std::exception_ptr error;
    boost::asio::co_spawn(
      m_ioc, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(work)); },
      [&](std::exception_ptr e) { error = e; });
    m_ioc.restart();
    m_ioc.run();
    if (error) {
      std::rethrow_exception(error);
    }
    return std::move(*out);
  }

  // The jenkins:: calls under test, on the real client.
  net::Result<jenkins::MintAnswer> mint(jenkins::Variant variant,
                                        const std::vector<jenkins::MintItem>& items);
  net::Result<jenkins::ListAnswer> list(const std::vector<std::string>& users);
  net::Result<jenkins::RevokeAnswer> revoke(jenkins::Variant variant,
                                            const std::vector<jenkins::RevokeItem>& items);
  net::Result<void> verify(const std::string& user, const crypto::SecretBytes& token);

  // The control API: GET/POST/DELETE /__emu/<path> as the admin; throws on a failure.
  nlohmann::json control(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nullptr);
  void create_user(const std::string& name, bool realm = true);
  nlohmann::json events() { return control("GET", "events"); }
  nlohmann::json scripts() { return control("GET", "scripts"); }
  nlohmann::json state() { return control("GET", "state"); }

  // Checks every script compiled so far: each is one of our embedded scripts with one
  // payload literal (template_sha256, DESIGN §10). Returns how many ran; fails the test
  // case otherwise.
  std::size_t check_only_known_scripts();

  net::Client& client() { return *m_client; }

private:
  void start();
  void stop();

  Options m_options;
  std::filesystem::path m_data;
  pid_t m_pid = -1;
  std::string m_url;
  std::string m_admin_user;
  std::string m_admin_token;
  boost::asio::io_context m_ioc;
  std::unique_ptr<net::Client> m_client;
};

// SHA-256 of `text`, lowercase hex.
std::string sha256_hex(std::string_view text);

// The SHA-256 of each embedded script's constant text (placeholder in place).
std::set<std::string> known_script_hashes();

} // namespace test_emu
