#include "rotation/for_each_concurrently.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Runs `body` to completion on a fresh single-threaded io_context; returns the error
// it ended with, if any.
template<typename F>
std::exception_ptr
run(F body)
{
  asio::io_context io;
  std::exception_ptr error;
  bool finished = false;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    error = e;
    finished = true;
  });
  io.run();
  REQUIRE(finished);
  return error;
}

} // namespace

TEST_SUITE("rotation")
{
  TEST_CASE("for_each_concurrently runs every index once with at most `limit` in flight")
  {
    for (const std::size_t limit : { std::size_t{ 1 }, std::size_t{ 3 }, std::size_t{ 64 } }) {
      CAPTURE(limit);
      const std::size_t n = 20;
      std::vector<int> runs(n, 0);
      std::vector<std::size_t> start_order;
      std::size_t in_flight = 0;
      std::size_t most = 0;
      auto error = run([&]() -> asio::awaitable<void> {
        co_await rotation::for_each_concurrently(
          n, limit, [&](std::size_t i) -> asio::awaitable<void> {
            start_order.push_back(i);
            most = std::max(most, ++in_flight);
            // Later indices finish sooner: completions come out of order.
            asio::steady_timer t(co_await asio::this_coro::executor, 1ms * (n - i));
            co_await t.async_wait(asio::use_awaitable);
            --in_flight;
            ++runs[i];
          });
        // Nothing may still be running once the call returns.
        CHECK(in_flight == 0);
      });
      CHECK_FALSE(error);
      CHECK(runs == std::vector<int>(n, 1));
      CHECK(most == std::min(limit, n));
      for (std::size_t i = 0; i < start_order.size(); ++i) {
        CHECK(start_order[i] == i);
      }
    }
  }

  TEST_CASE("for_each_concurrently with nothing to do returns at once")
  {
    int calls = 0;
    auto error = run([&]() -> asio::awaitable<void> {
      co_await rotation::for_each_concurrently(0, 4, [&](std::size_t) -> asio::awaitable<void> {
        ++calls;
        co_return;
      });
    });
    CHECK_FALSE(error);
    CHECK(calls == 0);
  }

  TEST_CASE("for_each_concurrently finishes work that never suspends")
  {
    std::vector<int> runs(7, 0);
    auto error = run([&]() -> asio::awaitable<void> {
      co_await rotation::for_each_concurrently(7, 3, [&](std::size_t i) -> asio::awaitable<void> {
        ++runs[i];
        co_return;
      });
    });
    CHECK_FALSE(error);
    CHECK(runs == std::vector<int>(7, 1));
  }

  TEST_CASE("for_each_concurrently rethrows the first error and starts nothing after it")
  {
    std::vector<std::size_t> started;
    auto error = run([&]() -> asio::awaitable<void> {
      co_await rotation::for_each_concurrently(10, 2, [&](std::size_t i) -> asio::awaitable<void> {
        started.push_back(i);
        asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
        co_await t.async_wait(asio::use_awaitable);
        if (i == 1) {
          throw std::runtime_error("item 1 failed");
        }
      });
    });
    REQUIRE(error);
    CHECK_THROWS_WITH_AS(std::rethrow_exception(error), "item 1 failed", std::runtime_error);
    // 0 and 1 start together; 0's worker may take index 2 before 1 fails, no more.
    CHECK(started.size() <= 3);
    CHECK(started.size() >= 2);
  }

  TEST_CASE("for_each_concurrently never returns while a worker runs, even when its caller is "
            "cancelled")
  {
    asio::io_context io;
    asio::cancellation_signal cancel;
    std::size_t in_flight = 0;
    bool returned_early = false;
    bool finished = false;
    asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await rotation::for_each_concurrently(4, 4, [&](std::size_t) -> asio::awaitable<void> {
          ++in_flight;
          asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
          co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
          --in_flight;
        });
        returned_early = in_flight != 0;
      },
      asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr) { finished = true; }));
    asio::steady_timer t(io, 5ms);
    t.async_wait(
      [&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    io.run();
    CHECK(finished);
    CHECK_FALSE(returned_early);
    CHECK(in_flight == 0);
  }
}
