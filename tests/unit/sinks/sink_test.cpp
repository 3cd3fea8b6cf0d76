#include "sinks/sink.hpp"

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

using namespace sinks;

namespace {

config::Sink
http_config()
{
  config::Sink c;
  c.type = config::SinkType::http;
  c.recipients = { "deploy" };
  c.url = "https://secrets.internal/v1/jenkins/svc-deploy";
  c.method = "PUT";
  c.headers = { { "Authorization", "Bearer s3cr3t-header-value" } };
  return c;
}

} // namespace

TEST_SUITE("sinks::config_hash")
{
  TEST_CASE("is a stable hex SHA-256 of the config")
  {
    const auto h = config_hash(http_config());
    CHECK(h.size() == 64);
    CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(config_hash(http_config()) == h);
  }

  TEST_CASE("changes with where and to whom the envelope goes")
  {
    const auto base = config_hash(http_config());
    auto c = http_config();
    c.recipients.push_back("deploy-next");
    CHECK(config_hash(c) != base);
    c = http_config();
    c.url += "x";
    CHECK(config_hash(c) != base);
    c = http_config();
    c.method = "POST";
    CHECK(config_hash(c) != base);
    c = http_config();
    c.headers[0].name = "X-Auth";
    CHECK(config_hash(c) != base);
    c = http_config();
    c.headers[0].value = "Bearer other";
    CHECK(config_hash(c) != base);
    c = http_config();
    c.type = config::SinkType::file;
    c.path = "/a";
    auto d = c;
    d.path = "/b";
    CHECK(config_hash(c) != config_hash(d));
  }

  TEST_CASE("does not change with timeout, mode or group")
  {
    config::Sink c;
    c.type = config::SinkType::file;
    c.recipients = { "deploy" };
    c.path = "/var/lib/deploy/token.json";
    const auto base = config_hash(c);
    c.timeout = std::chrono::seconds(99);
    c.mode = 0640;
    c.group = "deploy";
    CHECK(config_hash(c) == base);
  }

  TEST_CASE("tells command arguments apart by their boundaries")
  {
    config::Sink a;
    a.type = config::SinkType::exec;
    a.command = { "/bin/hook", "ab", "c" };
    auto b = a;
    b.command = { "/bin/hook", "a", "bc" };
    CHECK(config_hash(a) != config_hash(b));
  }
}

TEST_SUITE("sinks::make_sink")
{
  TEST_CASE("makes file, exec and http sinks; an http sink needs an executor")
  {
    config::Sink f;
    f.type = config::SinkType::file;
    f.path = "/tmp/x";
    auto fs = make_sink(f);
    REQUIRE(fs.has_value());
    CHECK((*fs)->describe() == "file /tmp/x");
    CHECK((*fs)->config_hash() == config_hash(f));

    config::Sink e;
    e.type = config::SinkType::exec;
    e.command = { "/usr/local/bin/publish-token" };
    auto es = make_sink(e);
    REQUIRE(es.has_value());
    CHECK((*es)->describe() == "exec /usr/local/bin/publish-token");

    auto c = http_config();
    c.mark = config::Mark{ "config.yaml", 12, 9 };
    boost::asio::io_context io;
    auto hs = make_sink(c, io.get_executor());
    REQUIRE(hs.has_value());
    CHECK((*hs)->describe() == "http https://secrets.internal/v1/jenkins/svc-deploy");
    CHECK((*hs)->config_hash() == config_hash(c));

    auto none = make_sink(c);
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().kind == "internal");
    CHECK(none.error().message.find("config.yaml:12:9") != std::string::npos);
    CHECK(none.error().message.find("s3cr3t") == std::string::npos);
  }
}
