#include "config/control_socket.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace {

struct ConfigFile
{
  explicit ConfigFile(const std::string& text)
  {
    std::string tmpl = "/tmp/jtr-ctlcfg-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    dir = tmpl;
    path = dir + "/config.yaml";
    std::ofstream(path) << text;
  }
  ConfigFile(const ConfigFile&) = delete;
  ConfigFile& operator=(const ConfigFile&) = delete;
  ~ConfigFile()
  {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
  std::string path;
};

std::string
socket_of(const std::string& text)
{
  const ConfigFile f(text);
  auto r = config::read_control_socket(f.path);
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  return *r;
}

std::string
error_of(const std::string& text, std::string* file = nullptr)
{
  const ConfigFile f(text);
  auto r = config::read_control_socket(f.path);
  REQUIRE(!r.has_value());
  CHECK(r.error().kind == "config");
  if (file != nullptr) {
    *file = f.path;
  }
  return r.error().message.substr(f.path.size());
}

} // namespace

TEST_SUITE("config::read_control_socket")
{
  TEST_CASE("only control.socket is read; the rest may be anything")
  {
    CHECK(socket_of("control: {socket: /run/x/ctl.sock, group: ops}\n"
                    "controllers: 7\nadmin_token_file: /root/secret\nunknown_key: 1\n") ==
          "/run/x/ctl.sock");
    CHECK(socket_of("users: []\n") == "/run/jenkins-token-rotator/control.sock");
    CHECK(socket_of("") == "/run/jenkins-token-rotator/control.sock");
    CHECK(socket_of("control:\n  group: ops\n") == "/run/jenkins-token-rotator/control.sock");
  }

  TEST_CASE("the path is expanded and taken from the config's directory as the daemon does")
  {
    ::setenv("JTR_TEST_RUNTIME", "/run/jtr-test", 1);
    CHECK(socket_of("control:\n  socket: ${JTR_TEST_RUNTIME}/c.sock\n") == "/run/jtr-test/c.sock");
    ::unsetenv("JTR_TEST_RUNTIME");
    const ConfigFile f("control: {socket: rel/c.sock}\n");
    CHECK(config::read_control_socket(f.path).value() == f.dir + "/rel/c.sock");
  }

  TEST_CASE("a syntax error outside the control block does not hide the socket")
  {
    CHECK(socket_of("state_dir: [broken\ncontrol:\n  socket: /run/y.sock\nusers: {\n") ==
          "/run/y.sock");
    // Inside it, the error is the file's, with its line.
    CHECK(error_of("state_dir: /x\ncontrol:\n  socket: [1\n").starts_with(":"));
  }

  TEST_CASE("errors name the file, line and column")
  {
    CHECK(error_of("control:\n  socket: [1]\n") == ":2:11: control.socket: expected a path");
    CHECK(error_of("a: 1\ncontrol: 3\n") == ":2:10: control: expected a mapping");
    CHECK(error_of("control:\n  socket: ${JTR_NO_SUCH_VARIABLE}/x\n")
            .starts_with(":2:11: control.socket: "));
    auto missing = config::read_control_socket("/nonexistent/config.yaml");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find("--socket PATH") != std::string::npos);
  }
}
