#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace net {

// The completion token of every coroutine I/O call of ours: the error code comes back as
// the first element of a tuple instead of an exception (`auto [ec, n] = co_await ...`).
inline constexpr auto k_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

} // namespace net
