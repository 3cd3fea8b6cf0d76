#pragma once

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <vector>

namespace rotation {

// The engine's cooperative stop. Work checks requested() at its safe points (between
// batches, before prune); the operations that may wait long (a sink's delivery, which for
// an exec hook kills the hook's process group when cancelled, and retry sleeps) run
// through cancellable() and are cut short by request(). Lives on the engine's one io
// thread: request() is called there (a signal_set handler, the control socket).
class Stop
{
public:
  Stop() = default;
  Stop(const Stop&) = delete;
  Stop& operator=(const Stop&) = delete;

  [[nodiscard]] bool requested() const { return m_requested; }

  // Sticky: callers check requested() before they start what they would cut short.
  void request()
  {
    m_requested = true;
    const auto signals = m_signals; // an emit may let a cancellable() finish and unregister
    for (auto* s : signals) {
      s->emit(boost::asio::cancellation_type::terminal);
    }
  }

  // Runs `op` to its end; a stop request cancels it (terminal cancellation), and `op`
  // decides what a cancelled run returns. Never returns before `op` has finished.
  template<typename T>
  boost::asio::awaitable<T> cancellable(boost::asio::awaitable<T> op)
  {
    namespace asio = boost::asio;
    asio::cancellation_signal signal;
    m_signals.push_back(&signal);
    struct Unregister
    {
      std::vector<asio::cancellation_signal*>& signals;
      asio::cancellation_signal* signal;
      ~Unregister() { std::erase(signals, signal); }
    } unregister{ m_signals, &signal };
    co_return co_await asio::co_spawn(
      co_await asio::this_coro::executor, std::move(op),
      asio::bind_cancellation_slot(signal.slot(), asio::use_awaitable));
  }

private:
  bool m_requested = false;
  std::vector<boost::asio::cancellation_signal*> m_signals;
};

} // namespace rotation
