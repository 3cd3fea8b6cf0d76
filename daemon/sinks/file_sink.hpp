#pragma once

#include "sinks/sink.hpp"

#include <sys/types.h>

namespace sinks {

// Replaces one file atomically with the envelope (util::write_file_atomically).
class FileSink : public Sink
{
public:
  explicit FileSink(const config::Sink& config);

  // ok; rejected for a missing directory, permissions or a group we are not in;
  // retryable for other I/O errors (ENOSPC, EIO). The write and its fsyncs run on a
  // thread of their own, so the caller's io thread never waits for the disk.
  boost::asio::awaitable<Outcome> deliver(const Delivery& delivery) override;
  [[nodiscard]] std::string describe() const override;

  // The same delivery without a coroutine, for callers outside the io_context.
  [[nodiscard]] Outcome write(const Delivery& delivery) const;

private:
  std::string m_path;
  mode_t m_mode;
  std::string m_group;
};

} // namespace sinks
