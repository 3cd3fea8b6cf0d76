#include "sinks/file_sink.hpp"

#include "util/atomic_file.hpp"

#include <fmt/core.h>

namespace sinks {

namespace {

// The default keeps the envelope private to the daemon's user (DESIGN §5: mode).
constexpr mode_t k_default_mode = 0600;

} // namespace

FileSink::FileSink(const config::Sink& config)
  : Sink(config)
  , m_path(config.path)
  , m_mode(config.mode.value_or(k_default_mode))
  , m_group(config.group)
{
}

std::string
FileSink::describe() const
{
  return "file " + m_path;
}

Outcome
FileSink::write(const Delivery& delivery) const
{
  if (delivery.envelope_json.empty()) {
    // A reader must never see an empty file: refuse rather than replace with nothing.
    return { Status::rejected, fmt::format("file sink {}: refusing an empty envelope", m_path) };
  }
  const auto r = util::write_file_atomically(m_path, delivery.envelope_json,
                                             util::AtomicFileOptions{ m_mode, m_group });
  if (r) {
    return { Status::ok, fmt::format("file sink {}: written", m_path) };
  }
  // Disk full or an I/O error may pass; a missing directory, permissions or a
  // group we are not in need an operator.
  const Status status = r.error().kind == "io" ? Status::retryable : Status::rejected;
  return { status, fmt::format("file sink {}: {}", m_path, r.error().message) };
}

boost::asio::awaitable<Outcome>
FileSink::deliver(const Delivery& delivery)
{
  co_return write(delivery);
}

} // namespace sinks
