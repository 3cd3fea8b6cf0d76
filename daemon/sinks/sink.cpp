#include "sinks/sink.hpp"

#include "sinks/exec_sink.hpp"
#include "sinks/file_sink.hpp"
#include "sinks/http_sink.hpp"

#include <fmt/core.h>
#include <sodium.h>

namespace sinks {

namespace {

std::string
sha256_hex(std::string_view data)
{
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string hex;
  hex.reserve(2 * sizeof digest);
  for (const unsigned char b : digest) {
    hex += fmt::format("{:02x}", b);
  }
  return hex;
}

// Length-prefixed fields: ["a","bc"] and ["ab","c"] must not hash alike.
void
field(std::string& out, std::string_view key, std::string_view value)
{
  out += fmt::format("{}:{}:{}\n", key, value.size(), value);
}

} // namespace

const char*
to_string(Status status)
{
  switch (status) {
    case Status::ok:
      return "ok";
    case Status::retryable:
      return "retryable";
    case Status::rejected:
      return "rejected";
  }
  return "rejected";
}

Sink::Sink(const config::Sink& config)
  : m_config_hash(sinks::config_hash(config))
{
}

std::string
config_hash(const config::Sink& config)
{
  std::string canon;
  field(canon, "v", "1");
  field(canon, "type", config::to_string(config.type));
  for (const auto& r : config.recipients) {
    field(canon, "recipient", r);
  }
  switch (config.type) {
    case config::SinkType::file:
      field(canon, "path", config.path);
      break;
    case config::SinkType::exec:
      for (const auto& arg : config.command) {
        field(canon, "arg", arg);
      }
      break;
    case config::SinkType::http:
      field(canon, "url", config.url);
      field(canon, "method", config.method);
      for (const auto& h : config.headers) {
        field(canon, "header", h.name);
        // A changed credential changes the hash, but the value never leaves this function.
        field(canon, "header-sha256", sha256_hex(h.value.view()));
      }
      break;
  }
  return sha256_hex(canon);
}

util::Result<std::unique_ptr<Sink>>
make_sink(const config::Sink& config, boost::asio::any_io_executor executor)
{
  switch (config.type) {
    case config::SinkType::file:
      return std::unique_ptr<Sink>(std::make_unique<FileSink>(config));
    case config::SinkType::exec:
      return std::unique_ptr<Sink>(std::make_unique<ExecSink>(config));
    case config::SinkType::http: {
      auto sink = HttpSink::create(config, std::move(executor));
      if (!sink) {
        return sink.error();
      }
      return std::unique_ptr<Sink>(std::move(*sink));
    }
  }
  return util::make_error("internal",
                          fmt::format("{}: unknown sink type", config.mark.to_string()));
}

} // namespace sinks
