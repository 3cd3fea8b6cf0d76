#include "util/atomic_file.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Dir
{
  Dir()
  {
    std::string templ = "/tmp/jtr-atomic-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path = templ;
  }
  ~Dir()
  {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

std::string
slurp(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct stat
stat_of(const std::string& path)
{
  struct stat st
  {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st;
}

std::vector<std::string>
names_in(const std::string& dir)
{
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A gid that this process is in neither as its effective gid nor as a supplementary one.
gid_t
foreign_gid()
{
  std::vector<gid_t> groups(static_cast<std::size_t>(::getgroups(0, nullptr)));
  REQUIRE(::getgroups(static_cast<int>(groups.size()), groups.data()) >= 0);
  gid_t gid = 4242;
  while (gid == ::getegid() || std::find(groups.begin(), groups.end(), gid) != groups.end()) {
    ++gid;
  }
  return gid;
}

// doctest cannot print a boost::system::result; say what failed instead.
bool
ok(const util::Result<void>& r)
{
  if (!r) {
    MESSAGE(r.error().message);
  }
  return r.has_value();
}

} // namespace

TEST_SUITE("util::write_file_atomically")
{
  TEST_CASE("writes the content with mode 0600 by default and replaces an older file")
  {
    Dir d;
    const auto path = d.path + "/token.json";
    REQUIRE(ok(util::write_file_atomically(path, "first")));
    REQUIRE(ok(util::write_file_atomically(path, "second, longer")));
    CHECK(slurp(path) == "second, longer");
    CHECK((stat_of(path).st_mode & 07777) == 0600);
    CHECK(names_in(d.path) == std::vector<std::string>{ "token.json" });
  }

  TEST_CASE("sets the requested mode regardless of the umask")
  {
    Dir d;
    const auto path = d.path + "/token.json";
    const mode_t old = ::umask(077);
    const auto r = util::write_file_atomically(path, "x", { 0640, "" });
    ::umask(old);
    REQUIRE(ok(r));
    CHECK((stat_of(path).st_mode & 07777) == 0640);
  }

  TEST_CASE("gives the file to a group the process is in")
  {
    Dir d;
    const auto path = d.path + "/token.json";
    const auto gid = ::getegid();
    REQUIRE(ok(util::write_file_atomically(path, "x", { 0640, std::to_string(gid) })));
    CHECK(stat_of(path).st_gid == gid);
  }

  TEST_CASE("refuses a group the process is not in, even as root, and writes nothing")
  {
    Dir d;
    const auto path = d.path + "/token.json";
    const auto gid = std::to_string(foreign_gid());
    const auto r = util::write_file_atomically(path, "x", { 0640, gid });
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "permission");
    CHECK(r.error().message.find("not a member of group " + gid) != std::string::npos);
    CHECK(r.error().message.find(path) != std::string::npos);
    CHECK(names_in(d.path).empty());
  }

  TEST_CASE("refuses a group name that does not exist")
  {
    Dir d;
    const auto r =
      util::write_file_atomically(d.path + "/t", "x", { 0600, "jtr-no-such-group-zz" });
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "config");
    CHECK(r.error().message.find("group jtr-no-such-group-zz does not exist") != std::string::npos);
  }

  TEST_CASE("names the missing directory")
  {
    Dir d;
    const auto path = d.path + "/nope/token.json";
    const auto r = util::write_file_atomically(path, "x");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == "missing");
    CHECK(r.error().message.find(d.path + "/nope") != std::string::npos);
    CHECK(r.error().message.find("No such file or directory") != std::string::npos);
  }

  TEST_CASE("refuses to replace a directory")
  {
    Dir d;
    REQUIRE(::mkdir((d.path + "/sub").c_str(), 0700) == 0);
    const auto r = util::write_file_atomically(d.path + "/sub", "x");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("found a directory") != std::string::npos);
  }

  TEST_CASE("removes only our own leftover temp files for that name")
  {
    Dir d;
    const auto path = d.path + "/token.json";
    for (const char* n :
         { ".token.json.jtr-tmp-a1B2c3", ".token.json.jtr-tmp-zzzzzz",
           ".token.json.jtr-tmp-toolong", ".other.json.jtr-tmp-a1B2c3", "token.json.bak" }) {
      std::ofstream(d.path + "/" + n) << "partial";
    }
    const auto removed = util::remove_stale_temp_files(path);
    REQUIRE(removed.has_value());
    CHECK(*removed == 2);
    REQUIRE(ok(util::write_file_atomically(path, "new")));
    CHECK(names_in(d.path) == std::vector<std::string>{ ".other.json.jtr-tmp-a1B2c3",
                                                        ".token.json.jtr-tmp-toolong", "token.json",
                                                        "token.json.bak" });
  }

  TEST_CASE("each write removes its own target's leftovers, and only those")
  {
    Dir d;
    std::ofstream(d.path + "/.a.json.jtr-tmp-111111") << "{\"half";
    std::ofstream(d.path + "/.a.json.jtr-tmp-222222") << "{\"half";
    std::ofstream(d.path + "/.b.json.jtr-tmp-333333") << "{\"half";
    REQUIRE(ok(util::write_file_atomically(d.path + "/a.json", "{}")));
    CHECK(names_in(d.path) == std::vector<std::string>{ ".b.json.jtr-tmp-333333", "a.json" });
    REQUIRE(ok(util::write_file_atomically(d.path + "/a.json", "{}")));
    REQUIRE(ok(util::write_file_atomically(d.path + "/b.json", "{}")));
    CHECK(names_in(d.path) == std::vector<std::string>{ "a.json", "b.json" });
  }

  TEST_CASE("cleans up stale temp files as part of a write")
  {
    Dir d;
    const auto path = d.path + "/token.json";
    std::ofstream(d.path + "/.token.json.jtr-tmp-Q9w8E7") << "{\"half";
    REQUIRE(ok(util::write_file_atomically(path, "{}")));
    CHECK(names_in(d.path) == std::vector<std::string>{ "token.json" });
  }
}
