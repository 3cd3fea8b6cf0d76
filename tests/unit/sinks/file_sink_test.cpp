#include "rotation/for_each_concurrently.hpp"
#include "sinks/file_sink.hpp"
#include "test_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace sinks;
using namespace sinks::test;

namespace {

config::Sink
file_config(const std::string& path)
{
  config::Sink c;
  c.type = config::SinkType::file;
  c.recipients = { "deploy" };
  c.path = path;
  return c;
}

std::string
envelope(int seq, std::size_t padding)
{
  nlohmann::json j = { { "format", "jenkins-token-rotator/v1" },
                       { "seq", seq },
                       { "padding", std::string(padding, 'p') } };
  return j.dump();
}

// Reads the whole file through one descriptor, as a consumer would.
bool
read_once(const std::string& path, std::string& out)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  out.clear();
  char buf[65536];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return n == 0;
}

} // namespace

TEST_SUITE("sinks::FileSink")
{
  TEST_CASE("writes the envelope with the configured mode")
  {
    TempDir d;
    auto c = file_config(d / "token.json");
    c.mode = 0640;
    FileSink sink(c);
    CHECK(sink.describe() == "file " + (d / "token.json"));
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.status == Status::ok);
    CHECK(read_file(d / "token.json") == R"({"format":"jenkins-token-rotator/v1"})");
    CHECK(file_mode(d / "token.json") == 0640);
  }

  TEST_CASE("a missing directory is rejected with its path")
  {
    TempDir d;
    FileSink sink(file_config(d / "missing/token.json"));
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.status == Status::rejected);
    CHECK(o.message.find(d / "missing") != std::string::npos);
  }

  TEST_CASE("a read-only directory is rejected with its path")
  {
    TempDir d;
    const auto dir = d / "ro";
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    const auto path = dir + "/token.json";
    // Writable first, to prove the same sink works as that user when it may.
    REQUIRE(::chmod(dir.c_str(), 0777) == 0);
    const auto writable = run_unprivileged([&] {
      FileSink sink(file_config(path));
      return run_delivery(sink, sample_delivery());
    });
    CHECK(writable.status == Status::ok);
    REQUIRE(::chmod(dir.c_str(), 0555) == 0);
    const auto o = run_unprivileged([&] {
      FileSink sink(file_config(path));
      return run_delivery(sink, sample_delivery(R"({"format":"jenkins-token-rotator/v1","n":2})"));
    });
    CHECK(o.status == Status::rejected);
    CHECK(o.message.find("cannot create a temporary file in " + dir) != std::string::npos);
    CHECK(o.message.find("Permission denied") != std::string::npos);
    // The earlier envelope is still there, untouched.
    CHECK(read_file(path) == R"({"format":"jenkins-token-rotator/v1"})");
  }

  TEST_CASE("a group the daemon is not in is rejected, naming the group")
  {
    TempDir d;
    std::vector<gid_t> groups(static_cast<std::size_t>(::getgroups(0, nullptr)));
    REQUIRE(::getgroups(static_cast<int>(groups.size()), groups.data()) >= 0);
    gid_t gid = 4243;
    while (gid == ::getegid() || std::find(groups.begin(), groups.end(), gid) != groups.end()) {
      ++gid;
    }
    auto c = file_config(d / "token.json");
    c.group = std::to_string(gid);
    FileSink sink(c);
    const auto o = run_delivery(sink, sample_delivery());
    CHECK(o.status == Status::rejected);
    CHECK(o.message.find("not a member of group " + std::to_string(gid)) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(d / "token.json"));
  }

  TEST_CASE("an empty envelope is refused and the file kept")
  {
    TempDir d;
    FileSink sink(file_config(d / "token.json"));
    REQUIRE(run_delivery(sink, sample_delivery()).ok());
    const auto o = run_delivery(sink, sample_delivery(""));
    CHECK(o.status == Status::rejected);
    CHECK(read_file(d / "token.json") == R"({"format":"jenkins-token-rotator/v1"})");
  }

  TEST_CASE("a leftover temp file from a crash is removed by the next delivery")
  {
    TempDir d;
    write_file(d / ".token.json.jtr-tmp-AbC123", "{\"half", 0600);
    FileSink sink(file_config(d / "token.json"));
    REQUIRE(run_delivery(sink, sample_delivery()).ok());
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(d.path())) {
      names.push_back(e.path().filename().string());
    }
    CHECK(names == std::vector<std::string>{ "token.json" });
  }

  TEST_CASE("a concurrent reader never sees a partial or invalid envelope over 1,000 replacements")
  {
    TempDir d;
    const auto path = d / "token.json";
    FileSink sink(file_config(path));
    REQUIRE(run_delivery(sink, sample_delivery(envelope(0, 10))).ok());

    std::atomic<bool> done{ false };
    int reads = 0;
    int bad = 0;
    std::string first_bad;
    std::set<int> seen;
    std::thread reader([&] {
      std::string content;
      while (!done.load()) {
        if (!read_once(path, content)) {
          ++bad;
          first_bad = "open or read failed";
          continue;
        }
        ++reads;
        try {
          const auto j = nlohmann::json::parse(content);
          const int seq = j.at("seq").get<int>();
          // The padding length is tied to seq: a mix of two versions would not match.
          if (j.at("padding").get<std::string>().size() !=
              static_cast<std::size_t>(seq % 97) * 331 + 10) {
            ++bad;
            first_bad = content.substr(0, 80);
          }
          seen.insert(seq);
        } catch (const std::exception&) {
          ++bad;
          if (first_bad.empty()) {
            first_bad = content.substr(0, 80);
          }
        }
      }
    });
    int failures = 0;
    for (int seq = 1; seq <= 1000; ++seq) {
      const auto d2 = sample_delivery(envelope(seq, static_cast<std::size_t>(seq % 97) * 331 + 10));
      if (!run_delivery(sink, d2).ok()) {
        ++failures;
      }
    }
    done = true;
    reader.join();
    CHECK(failures == 0);
    MESSAGE("reads: " << reads << ", versions seen: " << seen.size());
    CHECK(reads > 0);
    // The reader overlapped the writer: it saw several versions, not just the last.
    CHECK(seen.size() > 1);
    INFO("first bad read: " << first_bad);
    CHECK(bad == 0);
    CHECK(nlohmann::json::parse(read_file(path)).at("seq") == 1000);
  }

  TEST_CASE("many deliveries in flight on one io thread each land whole")
  {
    TempDir dir;
    std::vector<std::unique_ptr<FileSink>> sinks;
    std::vector<Delivery> deliveries;
    for (int i = 0; i < 32; ++i) {
      sinks.push_back(std::make_unique<FileSink>(file_config(dir / fmt::format("f{}.json", i))));
      deliveries.push_back(sample_delivery(envelope(i, 4096)));
    }
    boost::asio::io_context io;
    std::vector<Outcome> outcomes(32);
    bool finished = false;
    boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        co_await rotation::for_each_concurrently(
          32, 16, [&](std::size_t i) -> boost::asio::awaitable<void> {
            outcomes[i] = co_await sinks[i]->deliver(deliveries[i]);
          });
      },
      [&](std::exception_ptr e) {
        CHECK_FALSE(e);
        finished = true;
      });
    io.run();
    REQUIRE(finished);
    for (int i = 0; i < 32; ++i) {
      CAPTURE(i);
      CHECK(outcomes[static_cast<std::size_t>(i)].ok());
      CHECK(nlohmann::json::parse(read_file(dir / fmt::format("f{}.json", i))).at("seq") == i);
    }
  }
}
