#include "sinks/file_sink.hpp"

#include "util/atomic_file.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <memory>
#include <system_error>
#include <thread>

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

// The write and its fsyncs run on a thread of their own: on the engine's one io thread
// they would stall every other slot, and fsyncs in flight together share the file
// system's journal commits (tests/bench/full-pass). A thread per write rather than a
// pool: no thread outlives its write, so a forked child (the tests drop privileges in
// one) never inherits a pool without threads.
boost::asio::awaitable<Outcome>
FileSink::deliver(const Delivery& delivery)
{
  namespace asio = boost::asio;
  // `delivery` and `this` outlive the thread: the caller awaits the result.
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
    [this, &delivery](auto handler) {
      auto work = asio::make_work_guard(asio::get_associated_executor(handler));
      auto run = [this, &delivery, handler = std::move(handler), work = std::move(work)]() mutable {
        Outcome outcome = write(delivery);
        const auto executor = work.get_executor();
        asio::post(executor,
                   [handler = std::move(handler), outcome = std::move(outcome)]() mutable {
                     std::move(handler)(std::move(outcome));
                   });
      };
      // Shared, so that a thread that cannot start leaves the task whole to run here.
      auto task = std::make_shared<decltype(run)>(std::move(run));
      try {
        std::thread([task] { (*task)(); }).detach();
      } catch (const std::system_error&) {
        (*task)(); // no thread to be had (EAGAIN): write here rather than fail the sink
      }
    },
    asio::use_awaitable);
}

} // namespace sinks
