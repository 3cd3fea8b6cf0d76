#include "config/loader.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

namespace {

// A real config directory: an admin token file (0600), a recipient key and config.yaml.
class ConfigDir
{
public:
  ConfigDir()
  {
    std::string tmpl = (std::filesystem::temp_directory_path() / "jtr-schedule-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    m_dir = tmpl;
    write("token", "11aabbccddeeff00112233445566778899\n", 0600);
    write("deploy.pub", "fCTGSPWSdCNJ0GEr2pDMz9ecEwAeQUbzKDkJsXCPtXs=\n", 0644);
  }
  ~ConfigDir() { std::filesystem::remove_all(m_dir); }
  ConfigDir(const ConfigDir&) = delete;
  ConfigDir& operator=(const ConfigDir&) = delete;

  // Writes config.yaml: the controller and recipient lines 1-7, then `rest` from line 8.
  std::string config(const std::string& rest)
  {
    write("config.yaml",
          "controllers:\n"
          "  - name: ci\n"
          "    url: https://jenkins.example.com/\n"
          "    admin_user: admin\n"
          "    admin_token_file: token\n"
          "recipients:\n"
          "  deploy: deploy.pub\n" +
            rest,
          0600);
    return path("config.yaml");
  }

  std::string path(const std::string& name) const { return (m_dir / name).string(); }

private:
  void write(const std::string& name, const std::string& text, mode_t mode)
  {
    std::ofstream(path(name)) << text;
    REQUIRE(::chmod(path(name).c_str(), mode) == 0);
  }

  std::filesystem::path m_dir;
};

// A file sink of its own for each user: two sinks may not write one file.
std::string
sink()
{
  static int n = 0;
  return fmt::format("    sinks: [{{type: file, path: out-{}.json, recipients: [deploy]}}]\n", ++n);
}

} // namespace

TEST_SUITE("config::check_schedules")
{
  TEST_CASE("an unknown zone name is an error at the timezone's mark")
  {
    ConfigDir dir;
    const auto file = dir.config(std::string("users:\n"
                                             "  - user: svc-a\n"
                                             "    controller: ci\n"
                                             "    timezone: Mars/Olympus\n") +
                                 sink());
    const auto c = config::load(file);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message == file + ":11:15: users[0].timezone: expected an IANA time zone "
                                      "name such as Europe/Berlin or UTC, found \"Mars/Olympus\"");
  }

  TEST_CASE("the lifetime rule shows its arithmetic, once for users sharing the defaults")
  {
    ConfigDir dir;
    const auto file = dir.config(std::string("defaults:\n"
                                             "  schedule: every 7d\n"
                                             "  lifetime: 8d\n"
                                             "  grace: 1d\n"
                                             "  failure_budget: 1d\n"
                                             "users:\n"
                                             "  - user: svc-a\n"
                                             "    controller: ci\n") +
                                 sink() +
                                 "  - user: svc-b\n"
                                 "    controller: ci\n" +
                                 sink() +
                                 "  - user: svc-c\n"
                                 "    controller: ci\n"
                                 "    lifetime: 9d\n" +
                                 sink());
    const auto c = config::load(file);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message ==
          file + ":10:13: users[0].lifetime: expected at least 9d (longest gap 7d + grace 1d + "
                 "failure_budget 1d), found 8d (and 1 other user)");
  }

  TEST_CASE("a cron gap stretched by a fall-back night counts")
  {
    ConfigDir dir;
    const auto file = dir.config(std::string("users:\n"
                                             "  - user: svc-a\n"
                                             "    controller: ci\n"
                                             "    schedule: \"0 3 * * 1\"\n"
                                             "    timezone: Europe/Berlin\n"
                                             "    lifetime: 9d\n"
                                             "    grace: 1d\n"
                                             "    failure_budget: 1d\n") +
                                 sink());
    const auto c = config::load(file);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message == file +
                                 ":13:15: users[0].lifetime: expected at least 9d1h "
                                 "(longest gap 7d1h + grace 1d + failure_budget 1d), found 9d");
  }

  TEST_CASE("schedule errors are reported at the schedule's mark")
  {
    ConfigDir dir;
    const auto file = dir.config(std::string("defaults:\n"
                                             "  schedule: \"0 3 * * 8\"\n"
                                             "users:\n"
                                             "  - user: svc-a\n"
                                             "    controller: ci\n") +
                                 sink() +
                                 "  - user: svc-b\n"
                                 "    controller: ci\n"
                                 "    schedule: every fortnight\n" +
                                 sink());
    const auto c = config::load(file);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message ==
          file +
            ":9:13: users[0].schedule: expected a weekday 0-7 or sun-sat in field 5 of the "
            "cron line, found \"8\"\n" +
            file +
            ":16:15: users[1].schedule: expected 'every <duration>' with a duration such "
            "as 15m, 24h or 7d, found \"every fortnight\"");
  }

  TEST_CASE("a cron step wider than its range is refused at the schedule's mark")
  {
    // The fuzzer's "1 1 5 1 */8": accepted once, then no run after the first.
    ConfigDir dir;
    const auto file = dir.config(std::string("users:\n"
                                             "  - user: svc-a\n"
                                             "    controller: ci\n"
                                             "    schedule: \"1 1 5 1 */8\"\n") +
                                 sink());
    const auto c = config::load(file);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message ==
          file + ":11:15: users[0].schedule: expected a step of at most 6 in field 5 of the cron "
                 "line (a larger step names only 0: write that alone), found \"*/8\"");
  }

  TEST_CASE("valid schedules and zones load")
  {
    ConfigDir dir;
    const auto file = dir.config(std::string("defaults:\n"
                                             "  timezone: America/New_York\n"
                                             "users:\n"
                                             "  - user: svc-a\n"
                                             "    controller: ci\n") +
                                 sink() +
                                 "  - user: svc-b\n"
                                 "    controller: ci\n"
                                 "    schedule: \"*/15 9-17 * * MON-FRI\"\n"
                                 "    timezone: Europe/Berlin\n" +
                                 sink());
    const auto c = config::load(file);
    REQUIRE_MESSAGE(c.has_value(), c.error().message);
    REQUIRE(c->users.size() == 2);
    CHECK(c->users[0].policy.timezone == "America/New_York");
    CHECK(c->users[0].timezone_mark.line == 9);
    CHECK(c->users[1].timezone_mark.line == 17);
  }

  TEST_CASE("each schedule and zone is parsed once and kept in the policies that use it")
  {
    ConfigDir dir;
    const auto file = dir.config(std::string("defaults:\n"
                                             "  timezone: Europe/Berlin\n"
                                             "users:\n"
                                             "  - user: svc-a\n"
                                             "    controller: ci\n") +
                                 sink() +
                                 "  - user: svc-b\n"
                                 "    controller: ci\n" +
                                 sink() +
                                 "  - user: svc-c\n"
                                 "    controller: ci\n"
                                 "    schedule: \"0 3 * * 1\"\n"
                                 "    timezone: UTC\n" +
                                 sink());
    const auto c = config::load(file);
    REQUIRE_MESSAGE(c.has_value(), c.error().message);
    REQUIRE(c->users.size() == 3);
    for (const auto& u : c->users) {
      REQUIRE(u.policy.parsed_schedule != nullptr);
      REQUIRE(u.policy.zone.has_value());
      CHECK(u.policy.parsed_schedule->text() == u.policy.schedule);
      CHECK(u.policy.zone->name() == u.policy.timezone);
    }
    // One parse shared by the users that write the same text.
    CHECK(c->users[0].policy.parsed_schedule == c->users[1].policy.parsed_schedule);
    CHECK(c->users[0].policy.parsed_schedule != c->users[2].policy.parsed_schedule);
    CHECK(c->users[0].policy.parsed_schedule->interval() == std::chrono::seconds(7 * 86400));
    CHECK(c->users[2].policy.parsed_schedule->cron().has_value());
    CHECK(c->users[0].policy.zone->name() == "Europe/Berlin");
    CHECK(c->users[2].policy.zone->name() == "UTC");
    REQUIRE(c->defaults.parsed_schedule != nullptr);
    CHECK(c->defaults.parsed_schedule->text() == "every 7d");
    REQUIRE(c->defaults.zone.has_value());
    CHECK(c->defaults.zone->name() == "Europe/Berlin");
  }
}
