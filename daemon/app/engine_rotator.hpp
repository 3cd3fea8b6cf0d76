#pragma once

#include "service/rotator.hpp"
#include "state/store.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>

namespace app {

// service::Rotator over today's app::Engine: one engine per controller lane (each on a
// config holding only that controller and its users, so a slow or down controller never
// holds up another's pass), passes mapped onto PassOptions. Goes away when
// rotation::Engine (its lanes, stop and next_due built in) replaces app::Engine.
util::Result<std::unique_ptr<service::Rotator>> make_engine_rotator(
  boost::asio::any_io_executor executor, std::shared_ptr<const config::Config> config,
  state::Store& store);

} // namespace app
