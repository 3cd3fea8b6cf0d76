#include "config/expand.hpp"
#include "config/loader.hpp"
#include "sinks/sink.hpp"
#include "support/text.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <fmt/core.h>

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <sys/stat.h>
#include <type_traits>
#include <unistd.h>

// Issue 19: who may change the files we trust, secrets from ${file:}, FIFOs, the
// ${file:} budget and the validation gaps. Every case builds a real directory tree.
namespace {

using test::replace;

namespace fs = std::filesystem;

// A uid that owns nothing on this machine: CI runs as root, which may chown to it.
constexpr uid_t k_stranger = 4242;

class Tree
{
public:
  Tree()
  {
    std::string tmpl = (fs::temp_directory_path() / "jtr-trust-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    m_dir = tmpl;
    ::chmod(m_dir.c_str(), 0755);
    file("admin-token", "11000000000000000000000000000000ff\n", 0600);
    file("deploy.pub", "Ad3bk53WyWOuOQdFNUPA4chEbyYswQhGS2ZvdIv5Dwg=\n", 0644);
    file("hook", "#!/bin/sh\nexit 0\n", 0755);
  }
  ~Tree()
  {
    // Directories left 0000 or owned by others still go: we are root or their owner.
    std::error_code ec;
    fs::remove_all(m_dir, ec);
  }
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;

  std::string path(const std::string& name) const { return m_dir + "/" + name; }

  std::string file(const std::string& name, const std::string& content, mode_t mode) const
  {
    const auto p = path(name);
    std::ofstream(p, std::ios::binary) << content;
    REQUIRE(::chmod(p.c_str(), mode) == 0);
    return p;
  }

  std::string dir(const std::string& name, mode_t mode) const
  {
    const auto p = path(name);
    fs::create_directories(p);
    REQUIRE(::chmod(p.c_str(), mode) == 0);
    return p;
  }

  // The base config with `@DIR@` replaced; the hook and the key may be swapped.
  std::string config(const std::string& extra = "", const std::string& sink = "") const
  {
    std::string text =
      "state_dir: @DIR@/state\n"
      "controllers:\n"
      "  - name: ci\n"
      "    url: https://jenkins.example.com/\n"
      "    admin_user: token-rotator\n"
      "    admin_token_file: @DIR@/admin-token\n"
      "recipients:\n"
      "  deploy: @DIR@/deploy.pub\n"
      "users:\n"
      "  - user: svc-deploy\n"
      "    controller: ci\n"
      "    sinks:\n" +
      (sink.empty() ? std::string("      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n")
                    : sink) +
      extra;
    return sub(text);
  }

  std::string sub(std::string text) const
  {
    for (auto pos = text.find("@DIR@"); pos != std::string::npos; pos = text.find("@DIR@")) {
      text.replace(pos, 5, m_dir);
    }
    return text;
  }

  std::string errors(const std::string& yaml) const
  {
    auto r = config::load_from_string(yaml, "c.yaml");
    if (r) {
      return "";
    }
    CHECK(r.error().kind == "config");
    return r.error().message;
  }

  const std::string& root() const { return m_dir; }

private:
  std::string m_dir;
};

bool
running_as_root()
{
  return ::geteuid() == 0;
}

// Runs `load` on another thread; a FIFO that blocks it is opened for writing after 5 s
// so that the test fails instead of hanging.
util::Result<config::Config>
load_with_deadline(const std::string& path, const std::string& fifo)
{
  auto f = std::async(std::launch::async, [&] { return config::load(path); });
  if (f.wait_for(std::chrono::seconds(5)) == std::future_status::timeout) {
    const int fd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    FAIL("config::load blocked on the FIFO " << fifo);
    if (fd >= 0) {
      ::close(fd);
    }
  }
  return f.get();
}

} // namespace

TEST_SUITE("config trust: files others could change")
{
  TEST_CASE("a recipient key in a world-writable directory is refused")
  {
    Tree t;
    t.dir("open", 0777);
    t.file("open/deploy.pub", "Ad3bk53WyWOuOQdFNUPA4chEbyYswQhGS2ZvdIv5Dwg=\n", 0644);
    CHECK(t.errors(replace(t.config(), "/deploy.pub", "/open/deploy.pub")) ==
          t.sub("c.yaml:8:11: recipients.deploy: expected directory @DIR@/open not writable by "
                "group or others, found mode 0777"));
  }

  TEST_CASE("a hook under a writable grandparent names the file and the ancestor")
  {
    Tree t;
    t.dir("gp", 0777);
    t.dir("gp/p", 0755);
    t.file("gp/p/hook", "#!/bin/sh\nexit 0\n", 0755);
    CHECK(t.errors(t.config("", "      - {type: exec, command: [@DIR@/gp/p/hook], recipients: "
                                "[deploy]}\n")) ==
          t.sub("c.yaml:13:32: users[0].sinks[0].command[0]: expected directory @DIR@/gp not "
                "writable by group or others, found mode 0777 (an ancestor of @DIR@/gp/p/hook)"));
  }

  TEST_CASE("a hook reached through a symlink into a writable directory is refused")
  {
    Tree t;
    t.dir("open", 0777);
    t.file("open/hook", "#!/bin/sh\nexit 0\n", 0755);
    fs::create_symlink(t.path("open/hook"), t.path("link"));
    CHECK(t.errors(t.config("", "      - {type: exec, command: [@DIR@/link], recipients: "
                                "[deploy]}\n")) ==
          t.sub("c.yaml:13:32: users[0].sinks[0].command[0]: expected directory @DIR@/open not "
                "writable by group or others, found mode 0777 (an ancestor of @DIR@/open/hook, "
                "where @DIR@/link leads)"));
    // The same hook through a symlink in a safe directory to a safe place is fine.
    fs::create_symlink(t.path("hook"), t.path("good-link"));
    CHECK(t.errors(t.config("", "      - {type: exec, command: [@DIR@/good-link], recipients: "
                                "[deploy]}\n")) == "");
  }

  TEST_CASE("a file or a directory owned by another user is refused")
  {
    if (!running_as_root()) {
      MESSAGE("skipped: chown to another uid needs root (CI runs as root)");
      return;
    }
    Tree t;
    REQUIRE(::chown(t.path("admin-token").c_str(), k_stranger, 0) == 0);
    CHECK(t.errors(t.config()) ==
          t.sub("c.yaml:6:23: controllers[0].admin_token_file: expected @DIR@/admin-token owned "
                "by root, found uid 4242"));
    REQUIRE(::chown(t.path("admin-token").c_str(), 0, 0) == 0);

    t.dir("theirs", 0755);
    t.file("theirs/deploy.pub", "Ad3bk53WyWOuOQdFNUPA4chEbyYswQhGS2ZvdIv5Dwg=\n", 0644);
    REQUIRE(::chown(t.path("theirs").c_str(), k_stranger, 0) == 0);
    CHECK(t.errors(replace(t.config(), "/deploy.pub", "/theirs/deploy.pub")) ==
          t.sub("c.yaml:8:11: recipients.deploy: expected directory @DIR@/theirs owned by root, "
                "found uid 4242"));

    // A symlink someone else owns in a sticky directory could be swapped by them.
    t.dir("sticky", 01777);
    fs::create_symlink(t.path("hook"), t.path("sticky/hook"));
    REQUIRE(::lchown(t.path("sticky/hook").c_str(), k_stranger, 0) == 0);
    CHECK(t.errors(t.config("", "      - {type: exec, command: [@DIR@/sticky/hook], "
                                "recipients: [deploy]}\n")) ==
          t.sub("c.yaml:13:32: users[0].sinks[0].command[0]: expected symlink "
                "@DIR@/sticky/hook owned by root, found uid 4242 (on the way to "
                "@DIR@/sticky/hook)"));
  }

  TEST_CASE("a root-owned sticky directory such as /tmp is allowed")
  {
    if (!running_as_root()) {
      MESSAGE("skipped: a root-owned sticky directory needs root to make");
      return;
    }
    Tree t;
    t.dir("sticky", 01777);
    t.file("sticky/hook", "#!/bin/sh\nexit 0\n", 0755);
    CHECK(t.errors(t.config("", "      - {type: exec, command: [@DIR@/sticky/hook], "
                                "recipients: [deploy]}\n")) == "");
    // Without the sticky bit anyone may rename the hook away and plant their own.
    ::chmod(t.path("sticky").c_str(), 0777);
    CHECK(t.errors(t.config("", "      - {type: exec, command: [@DIR@/sticky/hook], "
                                "recipients: [deploy]}\n")) ==
          t.sub("c.yaml:13:32: users[0].sinks[0].command[0]: expected directory @DIR@/sticky "
                "not writable by group or others, found mode 0777"));
  }

  TEST_CASE("the config file itself: its directory and ancestors are judged too")
  {
    Tree t;
    t.dir("gp", 0757);
    t.dir("gp/etc", 0755);
    const auto path = t.file("gp/etc/c.yaml", t.config(), 0600);
    auto r = config::load(path);
    REQUIRE(r.has_error());
    CHECK(r.error().message ==
          t.sub("@DIR@/gp/etc/c.yaml: expected directory @DIR@/gp not writable by group or "
                "others, found mode 0757 (an ancestor of @DIR@/gp/etc/c.yaml)"));
    ::chmod(t.path("gp").c_str(), 0755);
    auto ok = config::load(path);
    CHECK_MESSAGE(ok.has_value(), ok.error().message);
  }

  TEST_CASE("a ${file:} in a group-writable directory is refused")
  {
    Tree t;
    t.dir("shared", 0770);
    t.file("shared/http-token", "s3cret-header-value\n", 0600);
    const auto msg = t.errors(
      t.config("", "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
                   "         headers: {Authorization: \"${file:@DIR@/shared/http-token}\"}}\n"));
    CHECK(msg == t.sub("c.yaml:14:35: users[0].sinks[0].headers.Authorization: "
                       "${file:@DIR@/shared/http-token}: expected directory @DIR@/shared not "
                       "writable by group or others, found mode 0770"));
    CHECK(msg.find("s3cret") == std::string::npos);
  }

  TEST_CASE("state_dir, when it exists, is a 0700 directory of ours")
  {
    Tree t;
    CHECK(t.errors(t.config()) == ""); // missing: the store creates it 0700
    t.dir("state", 0777);
    CHECK(t.errors(t.config()) ==
          t.sub("c.yaml:1:12: state_dir: @DIR@/state: expected a directory only its owner may "
                "use (chmod 0700), found mode 0777"));
    ::chmod(t.path("state").c_str(), 0700);
    CHECK(t.errors(t.config()) == "");
    if (running_as_root()) {
      REQUIRE(::chown(t.path("state").c_str(), k_stranger, 0) == 0);
      CHECK(t.errors(t.config()) ==
            t.sub("c.yaml:1:12: state_dir: @DIR@/state: expected a directory owned by uid 0 (this "
                  "process), found uid 4242"));
    }
  }

  TEST_CASE("signing_key: an optional private key file under the trusted-file rules")
  {
    Tree t;
    auto r = config::load_from_string(t.config(), "c.yaml");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    CHECK(r->signing_key.empty());

    t.file("signing.key", "not parsed by config\n", 0600);
    r = config::load_from_string(t.config("signing_key: @DIR@/signing.key\n"), "c.yaml");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    CHECK(r->signing_key == t.path("signing.key"));
    CHECK(r->signing_key_mark.line == 14);
    CHECK(r->signing_key_mark.column == 14);

    ::chmod(t.path("signing.key").c_str(), 0640);
    CHECK(t.errors(t.config("signing_key: @DIR@/signing.key\n")) ==
          t.sub("c.yaml:14:14: signing_key: @DIR@/signing.key: expected a file not readable by "
                "group or others (chmod 0600), found mode 0640"));
    t.dir("open", 0777);
    t.file("open/signing.key", "x\n", 0600);
    CHECK(t.errors(t.config("signing_key: @DIR@/open/signing.key\n")) ==
          t.sub("c.yaml:14:14: signing_key: expected directory @DIR@/open not writable by "
                "group or others, found mode 0777"));
    CHECK(t.errors(t.config("signing_key: @DIR@/missing.key\n")) ==
          t.sub("c.yaml:14:14: signing_key: @DIR@/missing.key: cannot be read: No such file or "
                "directory"));
  }
}

TEST_SUITE("config trust: secrets from ${file:}")
{
  TEST_CASE("an http sink URL keeps its written form beside the expanded one")
  {
    Tree t;
    t.file("url-secret", "s3cret-url-part\n", 0600);
    auto r = config::load_from_string(
      t.config("",
               "      - {type: http, url: \"http://127.0.0.1:1/hook/${file:@DIR@/url-secret}\", "
               "recipients: [deploy]}\n"),
      "c.yaml");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    const auto& s = r->users[0].sinks[0];
    CHECK(s.url == "http://127.0.0.1:1/hook/s3cret-url-part");
    CHECK(s.url_display == t.sub("http://127.0.0.1:1/hook/${file:@DIR@/url-secret}"));

    // The sink's name and its messages use the written form: nothing listens on port 1.
    boost::asio::io_context ioc;
    auto sink = sinks::make_sink(s, ioc.get_executor());
    REQUIRE(sink.has_value());
    CHECK((*sink)->describe() == "http " + s.url_display);
    sinks::Delivery d;
    d.envelope_json = "{}";
    d.token_uuid = "00000000-0000-4000-8000-000000000000";
    std::optional<sinks::Outcome> out;
    boost::asio::co_spawn(ioc, (*sink)->deliver(d), [&](std::exception_ptr e, sinks::Outcome o) {
      if (e) {
        std::rethrow_exception(e);
      }
      out = std::move(o);
    });
    ioc.run();
    REQUIRE(out.has_value());
    CHECK(out->status != sinks::Status::ok);
    CHECK(out->message.find("s3cret") == std::string::npos);
  }

  TEST_CASE("a path error never prints a secret the path was expanded from")
  {
    Tree t;
    t.file("where", "/nonexistent/s3cret-path-part/token\n", 0600);
    const auto msg =
      t.errors(replace(t.config(), t.path("admin-token"), t.sub("${file:@DIR@/where}")));
    CHECK(msg.find("s3cret") == std::string::npos);
    CHECK(msg == t.sub("c.yaml:6:23: controllers[0].admin_token_file: ${file:@DIR@/where}: cannot "
                       "be read: No such file or directory"));
  }

  TEST_CASE("${file:} in an exec command is refused: argv is public in /proc")
  {
    Tree t;
    t.file("arg-secret", "s3cret-arg\n", 0600);
    const auto msg = t.errors(t.config(
      "", "      - {type: exec, command: [@DIR@/hook, \"--token=${file:@DIR@/arg-secret}\"], "
          "recipients: [deploy]}\n"));
    CHECK(msg == "c.yaml:13:60: users[0].sinks[0].command[1]: expected no ${file:} in a command "
                 "(every user can read a process's arguments in /proc/PID/cmdline), found one: "
                 "pass the secret through the environment or stdin");
    CHECK(msg.find("s3cret") == std::string::npos);
  }

  TEST_CASE("header values from ${file:} are kept in wiped memory")
  {
    static_assert(std::is_same_v<decltype(config::Header::value), util::SecretText>);
    Tree t;
    t.file("http-token", "s3cret-header-value\n", 0600);
    auto r = config::load_from_string(
      t.config("", "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
                   "         headers: {Authorization: \"Bearer ${file:@DIR@/http-token}\"}}\n"),
      "c.yaml");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    const auto copy = r->users[0].sinks[0].headers; // copies are SecretText too
    CHECK(copy[0].value.view() == "Bearer s3cret-header-value");
  }

  TEST_CASE("the ${file:} values of one load add up to at most 1 MiB")
  {
    Tree t;
    t.file("big", std::string(60 * 1024, 'k') + "\n", 0600);
    std::string headers;
    for (int i = 0; i < 20; ++i) {
      headers += fmt::format("{}X-H{}: \"${{file:@DIR@/big}}\"", i == 0 ? "" : ", ", i);
    }
    const auto msg =
      t.errors(t.config("", "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
                            "         headers: {" +
                              headers + "}}\n"));
    // 17 × 60 KiB fit in 1 MiB; the 18th does not.
    CHECK(msg.find("users[0].sinks[0].headers.X-H17: ${file:" + t.path("big") +
                   "}: expected the ${file:} values of a config to add up to at most 1 MiB, found "
                   "more") != std::string::npos);
    CHECK(msg.find("kkkk") == std::string::npos);
  }

  TEST_CASE("each ${file:} is read once per load")
  {
    Tree t;
    const auto p = t.file("once", "first-value\n", 0600);
    config::Expander e;
    auto a = e.expand("${file:" + p + "}");
    REQUIRE(a.has_value());
    // Rewritten and then removed: the load goes on with what it read the first time.
    t.file("once", "second-value\n", 0600);
    REQUIRE(fs::remove(p));
    auto b = e.expand("x-${file:" + p + "}");
    REQUIRE_MESSAGE(b.has_value(), b.error().message);
    CHECK(b->view() == "x-first-value");
  }
}

TEST_SUITE("config trust: FIFOs and validation gaps")
{
  TEST_CASE("a FIFO at the config path is refused without hanging")
  {
    Tree t;
    const auto fifo = t.path("c.yaml");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto r = load_with_deadline(fifo, fifo);
    REQUIRE(r.has_error());
    CHECK(r.error().message == fifo + ": expected a regular file, found a FIFO");
  }

  TEST_CASE("a FIFO as admin token, signing key or ${file:} is refused without hanging")
  {
    Tree t;
    const auto fifo = t.path("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const auto path =
      t.file("c.yaml",
             t.sub("state_dir: @DIR@/state\ncontrollers:\n  - name: ci\n"
                   "    url: https://jenkins.example.com/\n    admin_user: token-rotator\n"
                   "    admin_token_file: @DIR@/fifo\nrecipients:\n  deploy: @DIR@/deploy.pub\n"
                   "users:\n  - user: svc-deploy\n    controller: ci\n    sinks:\n"
                   "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
                   "         headers: {Authorization: \"${file:@DIR@/fifo}\"}}\n"
                   "signing_key: @DIR@/fifo\n"),
             0600);
    auto r = load_with_deadline(path, fifo);
    REQUIRE(r.has_error());
    CHECK(r.error().message ==
          t.sub("@DIR@/c.yaml:6:23: controllers[0].admin_token_file: @DIR@/fifo: expected a "
                "regular file\n"
                "@DIR@/c.yaml:14:35: users[0].sinks[0].headers.Authorization: ${file:@DIR@/fifo}: "
                "expected a regular file\n"
                "@DIR@/c.yaml:15:14: signing_key: @DIR@/fifo: expected a regular file"));
  }

  TEST_CASE("a directory given as the config is a clear error, not an empty document")
  {
    Tree t;
    auto r = config::load(t.root());
    REQUIRE(r.has_error());
    CHECK(r.error().message == t.root() + ": expected a regular file, found a directory");
  }

  TEST_CASE("two sinks writing one file are refused, after normalising the path")
  {
    Tree t;
    const auto yaml = t.config() + "  - user: svc-other\n    controller: ci\n    sinks:\n"
                                   "      - {type: file, path: /tmp/x/../t.json, recipients: "
                                   "[deploy]}\n";
    CHECK(t.errors(yaml) == "c.yaml:17:28: users[1].sinks[0].path: expected a path no other sink "
                            "writes, found the path of users[0].sinks[0] (line 13)");
  }

  TEST_CASE("a user id with ':' or control characters is refused")
  {
    Tree t;
    CHECK(t.errors(replace(t.config(), "user: svc-deploy", "user: \"svc:deploy\"")) ==
          "c.yaml:10:11: users[0].user: expected a user id without ':' or control characters "
          "(verification logs in with Basic auth), found \"svc:deploy\"");
    CHECK(t.errors(replace(t.config(), "user: svc-deploy", "user: \"svc\\ndeploy\"")) ==
          "c.yaml:10:11: users[0].user: expected a user id without ':' or control characters "
          "(verification logs in with Basic auth), found \"svc\\ndeploy\"");
    CHECK(t.errors(replace(t.config(), "user: svc-deploy", "user: \"svc\\e[31m\"")) ==
          "c.yaml:10:11: users[0].user: expected a user id without ':' or control characters "
          "(verification logs in with Basic auth), found \"svc\\x1b[31m\"");
  }

  TEST_CASE("header values with NUL or control bytes are refused without echoing them")
  {
    Tree t;
    const auto with = [&](const std::string& value) {
      return t.config("", "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
                          "         headers: {X-Key: \"" +
                            value + "\"}}\n");
    };
    CHECK(t.errors(with("ab\\0cd")) == "c.yaml:14:27: users[0].sinks[0].headers.X-Key: expected a "
                                       "header value without control characters, found byte 0x00");
    CHECK(t.errors(with("ab\\x1b[2Jcd")) ==
          "c.yaml:14:27: users[0].sinks[0].headers.X-Key: expected a header value without "
          "control characters, found byte 0x1b");
    CHECK(t.errors(with("tab\\tis fine")) == "");
    t.file("esc-token", "s3cret\x07value\n", 0600);
    const auto msg = t.errors(with("${file:@DIR@/esc-token}"));
    CHECK(msg == "c.yaml:14:27: users[0].sinks[0].headers.X-Key: expected a header value "
                 "without control characters, found byte 0x07");
  }
}
