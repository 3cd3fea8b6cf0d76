#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstddef>
#include <exception>

namespace rotation {

// Runs `fn(0)` … `fn(n - 1)` (each returning awaitable<void>) with at most `limit` of
// them in flight, and returns once all have finished. Indices start in order. The
// workers run on the caller's executor, which must be single-threaded (the engine's
// io_context): they share the caller's state without locks and interleave only at
// co_await. After the first exception no further index starts; it is rethrown here.
// It never returns while a worker runs, whatever happens (the workers use this frame):
// a cancellation of the caller is not taken as "done"; the workers see their own.
template<typename F>
boost::asio::awaitable<void>
for_each_concurrently(std::size_t n, std::size_t limit, F fn)
{
  namespace asio = boost::asio;
  if (n == 0) {
    co_return;
  }
  // A cancelled wait below must not throw past the workers that still use this frame.
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto executor = co_await asio::this_coro::executor;
  const std::size_t workers = std::clamp<std::size_t>(limit, 1, n);
  std::size_t next = 0;
  std::size_t running = workers;
  std::exception_ptr failure;
  // Never expires: the last worker to finish cancels it to wake the caller.
  asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
  for (std::size_t k = 0; k < workers; ++k) {
    asio::co_spawn(
      executor,
      [&]() -> asio::awaitable<void> {
        while (next < n && !failure) {
          const std::size_t i = next++;
          co_await fn(i);
        }
      },
      [&](std::exception_ptr e) {
        if (e && !failure) {
          failure = e;
        }
        if (--running == 0) {
          all_done.cancel();
        }
      });
  }
  // co_spawn posts each worker's completion, so no cancel can come before this wait.
  while (running > 0) {
    boost::system::error_code ignored;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (running > 0) {
      // Woken by a cancellation of the caller, not by the last worker: wait on.
      co_await asio::this_coro::reset_cancellation_state();
    }
  }
  if (failure) {
    std::rethrow_exception(failure);
  }
}

} // namespace rotation
