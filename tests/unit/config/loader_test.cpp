#include "config/loader.hpp"
#include "support/text.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

namespace {

using test::replace;

namespace fs = std::filesystem;

// A temp directory with the files a config refers to, each with a real mode.
class Files
{
public:
  Files()
  {
    std::string tmpl = (fs::temp_directory_path() / "jtr-config-XXXXXX").string();
    m_dir = ::mkdtemp(tmpl.data());
    ::chmod(m_dir.c_str(), 0755);
    write("admin-token", "11000000000000000000000000000000ff\n", 0600);
    write("loose-token", "11000000000000000000000000000000ff\n", 0640);
    write("http-token", "s3cret-header-value\n", 0600);
    write("shared-http-token", "s3cret-header-value\n", 0604);
    write("deploy.pub", "Ad3bk53WyWOuOQdFNUPA4chEbyYswQhGS2ZvdIv5Dwg=\n", 0644);
    write("loose.pub", "Ad3bk53WyWOuOQdFNUPA4chEbyYswQhGS2ZvdIv5Dwg=\n", 0664);
    write("hook", "#!/bin/sh\nexit 0\n", 0755);
    write("loose-hook", "#!/bin/sh\nexit 0\n", 0757);
    fs::create_directory(m_dir + "/open");
    ::chmod((m_dir + "/open").c_str(), 0777);
    write("open/hook", "#!/bin/sh\nexit 0\n", 0755);
  }

  ~Files() { fs::remove_all(m_dir); }
  Files(const Files&) = delete;
  Files& operator=(const Files&) = delete;

  void write(const std::string& name, const std::string& content, mode_t mode) const
  {
    const auto p = m_dir + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), mode);
  }

  // Replaces @DIR@ with the temp directory.
  std::string sub(std::string text) const
  {
    for (auto pos = text.find("@DIR@"); pos != std::string::npos; pos = text.find("@DIR@")) {
      text.replace(pos, 5, m_dir);
    }
    return text;
  }

  const std::string& dir() const { return m_dir; }

private:
  std::string m_dir;
};

// A valid config; tests append to it or replace parts of it.
const char* const k_base = R"(state_dir: /var/lib/jtr
controllers:
  - name: ci
    url: https://jenkins.example.com/
    admin_user: token-rotator
    admin_token_file: @DIR@/admin-token
recipients:
  deploy: @DIR@/deploy.pub
users:
  - user: svc-deploy
    controller: ci
    sinks:
      - {type: file, path: /tmp/t.json, recipients: [deploy]}
)";

std::string
errors_of(const Files& f, const std::string& yaml)
{
  auto r = config::load_from_string(f.sub(yaml), "c.yaml");
  if (r) {
    return "";
  }
  CHECK(r.error().kind == "config");
  return r.error().message;
}

} // namespace

TEST_SUITE("config::load")
{
  TEST_CASE("a valid config loads into plain structs with defaults filled in")
  {
    Files f;
    auto r = config::load_from_string(f.sub(k_base), "c.yaml");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    CHECK(r->state_dir == "/var/lib/jtr");
    REQUIRE(r->controllers.size() == 1);
    CHECK(r->controllers[0].url == "https://jenkins.example.com/");
    CHECK(r->controllers[0].batch_size == 50);
    CHECK(r->controllers[0].max_concurrent == 4);
    CHECK(r->controllers[0].verify_concurrent == 16);
    CHECK(r->controllers[0].timeout == std::chrono::seconds(30));
    REQUIRE(r->users.size() == 1);
    CHECK(r->users[0].slot() == "ci/svc-deploy");
    CHECK(r->users[0].policy.lifetime == std::chrono::hours(24 * 30));
    CHECK(r->users[0].policy.token_prefix == "rotator-");
    REQUIRE(r->users[0].sinks.size() == 1);
    CHECK(r->users[0].sinks[0].recipients == std::vector<std::string>{ "deploy" });
    CHECK(r->retry.attempts == 5);
  }

  TEST_CASE("per-user keys override defaults, and defaults may come after users")
  {
    Files f;
    auto yaml = std::string(k_base) + "defaults: {grace: 12h, prune: all}\n";
    yaml = replace(yaml, "    controller: ci\n", "    controller: ci\n    grace: 1h\n");
    auto r = config::load_from_string(f.sub(yaml), "c.yaml");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    CHECK(r->users[0].policy.grace == std::chrono::hours(1));
    CHECK(r->users[0].policy.prune == config::PrunePolicy::all);
  }

  TEST_CASE("an unknown key is named with its line, column and the keys that exist")
  {
    Files f;
    CHECK(errors_of(f, std::string(k_base) + "prune_intervall: 5m\n") ==
          "c.yaml:14:1: prune_intervall: expected a known key (state_dir, control, metrics, log, "
          "prune_interval, catch_up_spread, audit_retention, retry, controllers, recipients, "
          "defaults, users, signing_key, state_key, notify), found unknown key "
          "\"prune_intervall\"");
    CHECK(errors_of(f, replace(k_base, "    admin_user:", "    urll: x\n    admin_user:")) ==
          "c.yaml:5:5: controllers[0].urll: expected a known key (name, url, admin_user, "
          "admin_token_file, ca_file, timeout, max_concurrent, verify_concurrent, batch_size, "
          "insecure_http, auth, admin_token_rotation), found "
          "unknown key \"urll\"");
  }

  TEST_CASE("a key given twice is an error")
  {
    Files f;
    CHECK(errors_of(f, std::string(k_base) + "state_dir: /x\n") ==
          "c.yaml:14:1: state_dir: expected each key once, found it again");
  }

  TEST_CASE("types are checked")
  {
    Files f;
    CHECK(errors_of(f, replace(k_base, "state_dir: /var/lib/jtr", "state_dir: [a, b]")) ==
          "c.yaml:1:12: state_dir: expected a string, found a sequence");
    CHECK(errors_of(f, std::string(k_base) + "retry: {attempts: many}\n") ==
          "c.yaml:14:19: retry.attempts: expected an integer from 1 to 100, found \"many\"");
    CHECK(errors_of(f, std::string(k_base) + "retry: {initial: 10m, max: 1m}\n") ==
          "c.yaml:14:8: retry: expected initial ≤ max, found initial 10m > max 1m");
    CHECK(errors_of(f, replace(k_base, "    admin_user: token-rotator\n",
                               "    admin_user: token-rotator\n    insecure_http: yes\n")) ==
          "c.yaml:6:20: controllers[0].insecure_http: expected true or false, found \"yes\"");
    CHECK(errors_of(f, replace(k_base, "    admin_user: token-rotator\n",
                               "    admin_user: token-rotator\n    verify_concurrent: 0\n")) ==
          "c.yaml:6:24: controllers[0].verify_concurrent: expected an integer from 1 to 64, "
          "found \"0\"");
  }

  TEST_CASE("verify_concurrent sets a controller's own limit for verifications")
  {
    Files f;
    auto r = config::load_from_string(
      f.sub(replace(k_base, "    admin_user: token-rotator\n",
                    "    admin_user: token-rotator\n    verify_concurrent: 32\n")),
      "c.yaml");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    CHECK(r->controllers[0].verify_concurrent == 32);
    CHECK(r->controllers[0].max_concurrent == 4);
  }

  TEST_CASE("durations need a unit")
  {
    Files f;
    CHECK(errors_of(f, std::string(k_base) + "defaults: {lifetime: 30 days}\n") ==
          "c.yaml:14:22: defaults.lifetime: expected a duration such as 90s, 15m, 24h, 7d or "
          "1h30m, found \"30 days\"");
    CHECK(errors_of(f, std::string(k_base) + "prune_interval: 15\n") ==
          "c.yaml:14:17: prune_interval: expected a duration such as 90s, 15m, 24h, 7d or 1h30m, "
          "found \"15\"");
  }

  TEST_CASE("controller and recipient names must exist")
  {
    Files f;
    CHECK(errors_of(f, replace(k_base, "    controller: ci", "    controller: cj")) ==
          "c.yaml:11:17: users[0].controller: expected a controller name (ci), found \"cj\"");
    CHECK(errors_of(f, replace(k_base, "recipients: [deploy]", "recipients: [deploy, ops]")) ==
          "c.yaml:13:62: users[0].sinks[0].recipients[1]: expected a recipient name (deploy), "
          "found \"ops\"");
  }

  TEST_CASE("the same user twice on one controller is an error, ignoring case as Jenkins does")
  {
    Files f;
    const auto yaml = std::string(k_base) + R"(  - user: SVC-Deploy
    controller: ci
    sinks:
      - {type: file, path: /tmp/u.json, recipients: [deploy]}
)";
    CHECK(errors_of(f, yaml) ==
          "c.yaml:14:11: users[1].user: expected each user once per controller (Jenkins ignores "
          "case), found \"SVC-Deploy\" again (first at line 10)");
  }

  TEST_CASE("two controllers with the same normalised URL are an error")
  {
    Files f;
    const auto yaml = replace(k_base, "recipients:\n", R"(  - name: ci2
    url: HTTPS://Jenkins.Example.com:443
    admin_user: token-rotator
    admin_token_file: @DIR@/admin-token
recipients:
)");
    CHECK(errors_of(f, yaml) ==
          "c.yaml:8:10: controllers[1].url: expected a URL no other controller uses, found the "
          "URL of controller \"ci\" (line 4)");
  }

  TEST_CASE("a user that is its controller's admin_user is an error")
  {
    Files f;
    CHECK(errors_of(f, replace(k_base, "  - user: svc-deploy", "  - user: Token-Rotator")) ==
          "c.yaml:10:11: users[0].user: expected a user other than controller \"ci\"'s "
          "admin_user, found \"Token-Rotator\"");
  }

  TEST_CASE("a user needs at least one sink")
  {
    Files f;
    auto no_key = replace(
      k_base, "    sinks:\n      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n", "");
    CHECK(errors_of(f, no_key) ==
          "c.yaml:10:5: users[0].sinks: expected at least one sink, found none");
    auto empty =
      replace(k_base, "    sinks:\n      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n",
              "    sinks: []\n");
    CHECK(errors_of(f, empty) ==
          "c.yaml:12:12: users[0].sinks: expected at least one sink, found none");
  }

  TEST_CASE("sink fields are checked per type")
  {
    Files f;
    const std::string file_sink = "      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n";
    CHECK(
      errors_of(f, replace(k_base, file_sink, "      - {type: file, recipients: [deploy]}\n")) ==
      "c.yaml:13:9: users[0].sinks[0]: expected key path, found none");
    CHECK(
      errors_of(
        f,
        replace(k_base, file_sink,
                "      - {type: exec, path: /x, command: [@DIR@/hook], recipients: [deploy]}\n")) ==
      "c.yaml:13:22: users[0].sinks[0].path: expected a known key (type, recipients, command, "
      "timeout), found unknown key \"path\"");
    CHECK(
      errors_of(
        f,
        replace(
          k_base, file_sink,
          "      - {type: http, url: https://s.example/, method: GET, recipients: [deploy]}\n")) ==
      "c.yaml:13:55: users[0].sinks[0].method: expected one of POST | PUT, found \"GET\"");
    CHECK(
      errors_of(f, replace(k_base, file_sink,
                           "      - {type: file, path: /t, mode: 640, recipients: [deploy]}\n")) ==
      "c.yaml:13:38: users[0].sinks[0].mode: expected an octal mode such as \"0640\", found "
      "\"640\"");
    CHECK(errors_of(
            f, replace(k_base, file_sink,
                       "      - {type: file, path: /t, mode: \"0666\", recipients: [deploy]}\n")) ==
          "c.yaml:13:38: users[0].sinks[0].mode: expected a mode that others cannot write, found "
          "\"0666\"");
    CHECK(
      errors_of(
        f, replace(k_base, file_sink, "      - {type: ftp, path: /t, recipients: [deploy]}\n")) ==
      "c.yaml:13:16: users[0].sinks[0].type: expected one of file | exec | http, found \"ftp\"");
    CHECK(errors_of(f, replace(k_base, file_sink, "      - {type: file, path: /t}\n")) ==
          "c.yaml:13:9: users[0].sinks[0]: expected key recipients, found none");
    CHECK(errors_of(f, replace(k_base, file_sink,
                               "      - {type: exec, command: [], recipients: [deploy]}\n")) ==
          "c.yaml:13:31: users[0].sinks[0].command: expected a command with at least the program, "
          "found an empty list");
  }

  TEST_CASE("notify targets are exec or http sinks without recipients")
  {
    Files f;
    auto ok = config::load_from_string(
      f.sub(std::string(k_base) +
            "notify:\n"
            "  - {type: http, url: 'http://127.0.0.1:9/hook', method: POST, timeout: 5s,\n"
            "     headers: {Authorization: \"Bearer ${file:@DIR@/http-token}\"}}\n"
            "  - {type: exec, command: [@DIR@/hook]}\n"),
      "c.yaml");
    REQUIRE_MESSAGE(ok.has_value(), (ok ? "" : ok.error().message));
    REQUIRE(ok->notify.size() == 2);
    CHECK(ok->notify[0].type == config::SinkType::http);
    CHECK(ok->notify[0].method == "POST");
    CHECK(ok->notify[0].timeout == std::chrono::seconds(5));
    CHECK(ok->notify[0].recipients.empty());
    CHECK(ok->notify[1].type == config::SinkType::exec);
    CHECK(ok->notify[1].command == std::vector<std::string>{ f.dir() + "/hook" });
    CHECK(errors_of(f, std::string(k_base) + "notify: []\n").empty());
    CHECK(errors_of(f, std::string(k_base) + "notify:\n  - {type: file, path: /tmp/n}\n") ==
          "c.yaml:15:12: notify[0].type: expected one of exec | http, found \"file\"");
    CHECK(
      errors_of(f, std::string(k_base) +
                     "notify:\n  - {type: exec, recipients: [deploy], command: [@DIR@/hook]}\n") ==
      "c.yaml:15:30: notify[0].recipients: expected no recipients: a notification is no "
      "envelope");
    CHECK(
      errors_of(f, std::string(k_base) + "notify:\n  - {type: exec, command: [@DIR@/loose-hook]}\n")
        .find("notify[0].command[0]") != std::string::npos);
  }

  TEST_CASE("http URLs: https anywhere, http only on loopback or with insecure_http")
  {
    Files f;
    CHECK(errors_of(
            f, replace(k_base, "https://jenkins.example.com/", "http://jenkins.example.com/")) ==
          "c.yaml:4:10: controllers[0].url: expected https (http only for loopback hosts or with "
          "insecure_http: true), found \"http://jenkins.example.com/\"");
    CHECK(errors_of(f, replace(k_base, "https://jenkins.example.com/", "http://127.0.0.1:8080")) ==
          "");
    CHECK(errors_of(f, replace(k_base, "https://jenkins.example.com/",
                               "http://jenkins.example.com/\n    insecure_http: true")) == "");
    CHECK(errors_of(f, replace(k_base, "https://jenkins.example.com/", "jenkins.example.com")) ==
          "c.yaml:4:10: controllers[0].url: expected an http(s) URL such as "
          "https://jenkins.example.com/, found \"jenkins.example.com\"");
    const std::string file_sink = "      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n";
    CHECK(
      errors_of(
        f, replace(k_base, file_sink,
                   "      - {type: http, url: http://vault.example/, recipients: [deploy]}\n")) ==
      "c.yaml:13:27: users[0].sinks[0].url: expected https (http only for loopback hosts or "
      "with insecure_http: true), found \"http://vault.example/\"");
  }

  TEST_CASE("secret files readable by group or others are refused, without their content")
  {
    Files f;
    CHECK(errors_of(f, replace(k_base, "@DIR@/admin-token", "@DIR@/loose-token")) ==
          f.sub("c.yaml:6:23: controllers[0].admin_token_file: @DIR@/loose-token: expected a file "
                "not readable by group or others (chmod 0600), found mode 0640"));
    const std::string file_sink = "      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n";
    const auto msg = errors_of(
      f,
      replace(k_base, file_sink,
              "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
              "         headers: {Authorization: \"Bearer ${file:@DIR@/shared-http-token}\"}}\n"));
    CHECK(msg ==
          f.sub("c.yaml:14:35: users[0].sinks[0].headers.Authorization: "
                "${file:@DIR@/shared-http-token}: expected a file not readable by group or others "
                "(chmod 0600), found mode 0604"));
    CHECK(msg.find("s3cret") == std::string::npos);
  }

  TEST_CASE("http sink headers the sink sets itself are refused; values are never shown")
  {
    Files f;
    const std::string file_sink = "      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n";
    const auto msg = errors_of(
      f,
      replace(k_base, file_sink,
              "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
              "         headers: {Host: evil.example, idempotency-key: s3cret-fixed, X-Ok: a}}\n"));
    CHECK(msg == "c.yaml:14:20: users[0].sinks[0].headers: expected a header the sink does not set "
                 "itself, found \"Host\"\n"
                 "c.yaml:14:40: users[0].sinks[0].headers: expected a header the sink does not set "
                 "itself, found \"idempotency-key\"");
    CHECK(msg.find("s3cret") == std::string::npos);
  }

  TEST_CASE("a header's ${file:} that is missing or unreadable is an error without content")
  {
    Files f;
    const std::string file_sink = "      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n";
    const auto with = [&](const std::string& path) {
      return replace(k_base, file_sink,
                     "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
                     "         headers: {Authorization: \"Bearer ${file:" +
                       path + "}\"}}\n");
    };
    CHECK(errors_of(f, with("@DIR@/missing-token")) ==
          f.sub("c.yaml:14:35: users[0].sinks[0].headers.Authorization: "
                "${file:@DIR@/missing-token}: cannot be read: No such file or directory"));
    CHECK(errors_of(f, with("@DIR@")) ==
          f.sub("c.yaml:14:35: users[0].sinks[0].headers.Authorization: ${file:@DIR@}: expected a "
                "regular file"));
  }

  TEST_CASE("files that others could rewrite are refused: config, recipient keys, exec hooks")
  {
    Files f;
    CHECK(errors_of(f, replace(k_base, "@DIR@/deploy.pub", "@DIR@/loose.pub")) ==
          f.sub("c.yaml:8:11: recipients.deploy: expected @DIR@/loose.pub not writable by group "
                "or others, found mode 0664"));
    const std::string file_sink = "      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n";
    CHECK(
      errors_of(
        f, replace(k_base, file_sink,
                   "      - {type: exec, command: [@DIR@/loose-hook], recipients: [deploy]}\n")) ==
      f.sub("c.yaml:13:32: users[0].sinks[0].command[0]: expected @DIR@/loose-hook not "
            "writable by group or others, found mode 0757"));
    CHECK(
      errors_of(
        f, replace(k_base, file_sink,
                   "      - {type: exec, command: [@DIR@/open/hook], recipients: [deploy]}\n")) ==
      f.sub("c.yaml:13:32: users[0].sinks[0].command[0]: expected directory @DIR@/open not "
            "writable by group or others, found mode 0777"));

    f.write("c.yaml", f.sub(k_base), 0620);
    auto r = config::load(f.dir() + "/c.yaml");
    REQUIRE(r.has_error());
    CHECK(
      r.error().message ==
      f.sub(
        "@DIR@/c.yaml: expected @DIR@/c.yaml not writable by group or others, found mode 0620"));
  }

  TEST_CASE("${ENV} and ${file:} expand in paths, URLs, headers and commands only")
  {
    Files f;
    ::setenv("JTR_TEST_DIR", f.dir().c_str(), 1);
    ::setenv("JTR_TEST_HOST", "jenkins.internal", 1);
    const std::string file_sink = "      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n";
    auto yaml = replace(k_base, "@DIR@/admin-token", "${JTR_TEST_DIR}/admin-token");
    yaml = replace(yaml, "https://jenkins.example.com/", "https://${JTR_TEST_HOST}/");
    yaml = replace(yaml, "  - user: svc-deploy", "  - user: ${JTR_TEST_HOST}");
    yaml = replace(
      yaml, file_sink,
      "      - {type: http, url: https://v.example/, recipients: [deploy],\n"
      "         headers: {Authorization: \"Bearer ${file:${JTR_TEST_DIR}/http-token}\"}}\n");
    auto r = config::load_from_string(f.sub(yaml), "c.yaml");
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    CHECK(r->controllers[0].admin_token_file == f.dir() + "/admin-token");
    CHECK(r->controllers[0].url == "https://jenkins.internal/");
    CHECK(r->users[0].user == "${JTR_TEST_HOST}"); // never expanded in user names
    REQUIRE(r->users[0].sinks[0].headers.size() == 1);
    CHECK(r->users[0].sinks[0].headers[0].value == "Bearer s3cret-header-value");

    ::unsetenv("JTR_TEST_UNSET");
    CHECK(errors_of(f, replace(k_base, "@DIR@/admin-token", "${JTR_TEST_UNSET}/admin-token")) ==
          "c.yaml:6:23: controllers[0].admin_token_file: environment variable JTR_TEST_UNSET is "
          "not set");
    CHECK(errors_of(f, replace(k_base, "/var/lib/jtr", "${file:@DIR@/missing}")) ==
          f.sub("c.yaml:1:12: state_dir: ${file:@DIR@/missing}: cannot be read: No such file or "
                "directory"));
  }

  TEST_CASE("token_prefix, socket path and metrics address are checked")
  {
    Files f;
    CHECK(errors_of(f, std::string(k_base) + "defaults: {token_prefix: \"rot ator\"}\n") ==
          "c.yaml:14:26: defaults.token_prefix: expected 1 to 24 of [A-Za-z0-9._-], found \"rot "
          "ator\"");
    CHECK(
      errors_of(f, std::string(k_base) + "control: {socket: /" + std::string(120, 's') + "}\n") ==
      "c.yaml:14:19: control.socket: expected a socket path of at most 107 bytes, found 121 "
      "bytes");
    CHECK(
      errors_of(f, std::string(k_base) + "metrics: {listen: 9817}\n") ==
      "c.yaml:14:19: metrics.listen: expected HOST:PORT such as 127.0.0.1:9817, found \"9817\"");
  }

  TEST_CASE("every error of a config is reported at once, in document order")
  {
    Files f;
    auto yaml = replace(k_base, "https://jenkins.example.com/", "ftp://x/");
    yaml = replace(yaml, "    controller: ci", "    controller: nope");
    yaml += "catch_up_spread: soon\nlog: {level: loud}\n";
    CHECK(
      errors_of(f, yaml) ==
      "c.yaml:4:10: controllers[0].url: expected an http(s) URL such as "
      "https://jenkins.example.com/, found \"ftp://x/\"\n"
      "c.yaml:11:17: users[0].controller: expected a controller name (ci), found \"nope\"\n"
      "c.yaml:14:18: catch_up_spread: expected a duration such as 90s, 15m, 24h, 7d or 1h30m, "
      "found \"soon\"\n"
      "c.yaml:15:14: log.level: expected one of debug | info | warning | error, found \"loud\"");
  }

  TEST_CASE("documents that are not a config get one clear error")
  {
    Files f;
    CHECK(errors_of(f, "") == "c.yaml:1:1: (root): expected a mapping, found an empty document");
    CHECK(errors_of(f, "# only a comment\n") ==
          "c.yaml:1:1: (root): expected a mapping, found an empty document");
    CHECK(errors_of(f, "- a\n- b\n") == "c.yaml:1:1: (root): expected a mapping, found a sequence");
    CHECK(errors_of(f, "just text\n") ==
          "c.yaml:1:1: (root): expected a mapping, found \"just text\"");
    CHECK(errors_of(f, "a: 1\n---\nb: 2\n") ==
          "c.yaml:3:1: expected one YAML document, found several");
    CHECK(errors_of(f, std::string("state_dir: \x01\x02\xff\xfe\n", 17)) ==
          "c.yaml:1:14: expected UTF-8 text, found byte 0xff");
    CHECK(errors_of(f, std::string("a: b\0c\n", 7)) ==
          "c.yaml:1:5: expected UTF-8 text, found byte 0x00");
    CHECK(errors_of(f, "a: [1, 2\n") ==
          "c.yaml:2:1: expected valid YAML, found an error: end of sequence flow not found");
  }

  TEST_CASE("YAML errors read as before: yaml-cpp's words where it refuses the text too")
  {
    Files f;
    // Both parsers refuse these; the words and marks are yaml-cpp's, as they always were.
    CHECK(errors_of(f, "a: b: c\n") ==
          "c.yaml:1:5: expected valid YAML, found an error: illegal map value");
    CHECK(
      errors_of(f, f.sub(k_base) + "defaults: *nowhere\n") ==
      "c.yaml:14:11: expected valid YAML, found an error: the referenced anchor is not defined");
    // yaml-cpp 0.7 took an unterminated quote as text; libyaml's words stand then.
    CHECK(errors_of(f, f.sub(k_base) + "defaults:\n  jitter: '5m\n") ==
          "c.yaml:16:1: expected valid YAML, found an error: found unexpected end of stream (while "
          "scanning a quoted scalar)");
    // Aliases still reach the walker: a shared sink list is read at each use (an exec
    // sink: two file sinks may not write one file).
    CHECK(errors_of(f, replace(replace(f.sub(k_base), "    sinks:\n", "    sinks: &s\n"),
                               "{type: file, path: /tmp/t.json,",
                               f.sub("{type: exec, command: [@DIR@/hook],")) +
                         "  - {user: svc-other, controller: ci, sinks: *s}\n") == "");
  }

  TEST_CASE("a billion-laughs document is refused quickly, without exhausting memory")
  {
    Files f;
    // Anchors defined where they are first used, then aliased 3,000 times at each of
    // the three levels the walker descends (users, sinks, command): 2.7e10 visits
    // if walked naively, from a 40 KB document.
    std::string args;
    for (int i = 0; i < 3000; ++i) {
      args += ", a";
    }
    std::string sinks = "&s {type: exec, command: [@DIR@/hook" + args + "], recipients: [deploy]}";
    std::string users = "&u {user: u, controller: ci, sinks: [" + sinks;
    for (int i = 0; i < 3000; ++i) {
      users += ", *s";
    }
    users += "]}";
    for (int i = 0; i < 3000; ++i) {
      users += ", *u";
    }
    auto yaml = replace(f.sub(k_base),
                        f.sub("users:\n  - user: svc-deploy\n    controller: ci\n    sinks:\n"
                              "      - {type: file, path: /tmp/t.json, recipients: [deploy]}\n"),
                        "users: [" + f.sub(users) + "]\n");
    const auto start = std::chrono::steady_clock::now();
    auto r = config::load_from_string(yaml, "bomb.yaml");
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(r.has_error());
    CHECK(r.error().message ==
          "bomb.yaml:1:1: (root): expected a config of reasonable size, found a document that "
          "expands past 2,000,000 nodes (anchors and aliases?)");
    CHECK(took < std::chrono::seconds(30)); // about 1 s at -O2; generous for -O0 + ASan
  }

  TEST_CASE("a config with thousands of mistakes reports the first hundred and a count")
  {
    Files f;
    std::string yaml = f.sub(k_base);
    for (int i = 0; i < 300; ++i) {
      yaml += fmt::format("unknown{}: 1\n", i);
    }
    const auto msg = errors_of(f, yaml);
    CHECK(std::count(msg.begin(), msg.end(), '\n') == 100);
    CHECK(msg.ends_with("c.yaml: and 200 more errors"));
  }
}
