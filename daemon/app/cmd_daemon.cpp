#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/engine_rotator.hpp"
#include "config/loader.hpp"
#include "control/server.hpp"
#include "crypto/envelope.hpp"
#include "crypto/harden.hpp"
#include "net/metrics_server.hpp"
#include "service/daemon.hpp"
#include "service/metrics.hpp"
#include "service/notifier.hpp"
#include "state/store.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <boost/asio/io_context.hpp>
#include <fmt/core.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <malloc.h>
#include <memory>

namespace app {

namespace {

// Test builds only (-DJTR_CRASH_POINTS=ON, like the crash points and JTR_CLOCK_FILE): a
// shorter longest sleep, so a test sees a clock jump without waiting a real minute.
std::chrono::seconds
max_sleep()
{
#if defined(JTR_CRASH_POINTS)
  if (const char* s = std::getenv("JTR_MAX_SLEEP_S"); s != nullptr && std::atoi(s) > 0) {
    return std::chrono::seconds(std::atoi(s));
  }
#endif
  return service::k_max_sleep;
}

} // namespace

// DESIGN §7a: config (78) → harden → state (lock) → control socket → metrics listener →
// READY=1 → first pass (resume) → schedules.
int
cmd_daemon(const std::vector<std::string>& args)
{
  const Args a("daemon", args, {}, { "config" });
  // Two malloc arenas: the io thread's and one the config parses share (the loader's copy
  // thread, the reload worker). Without a cap each gets its own and a reload leaves the
  // daemon ~8 MB larger for good (tests/bench/daemon-idle, 10,000 slots: 58 MB after a
  // reload, 49.7 MB with the cap, as before it).
  ::mallopt(M_ARENA_MAX, 2);
  auto loaded = config::load(a.config_path());
  if (!loaded) {
    std::fputs((loaded.error().message + "\n").c_str(), stderr);
    return util::exit_code::k_config;
  }
  auto config = std::make_shared<const config::Config>(std::move(*loaded));
  if (auto level = util::log::parse_level(config->log_level)) {
    util::log::configure(
      *level, util::log::parse_format(config->log_format).value_or(util::log::Format::text));
  }
  // The daemon holds plain tokens between mint and seal: fail closed if it cannot harden.
  if (auto h = crypto::harden_process(); !h) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("daemon: {}", h.error().message));
  }
  // A hook that exits early must not kill us with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  auto store = state::Store::open(config->state_dir, crypto::check_envelope);
  if (!store) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("daemon: {}", store.error().message));
  }

  boost::asio::io_context io;
  service::DaemonOptions options;
  options.config = config;
  options.store = &*store;
  options.max_sleep = max_sleep();
  options.make_rotator = [&io, &store](std::shared_ptr<const config::Config> c) {
    return make_engine_rotator(io.get_executor(), std::move(c), *store);
  };
  service::Daemon daemon(io, std::move(options));

  // The control socket, bound (or adopted from LISTEN_FDS) before READY=1, `daemon` its
  // Backend; stopped before the daemon goes away.
  control::ServerOptions control_options;
  control_options.path = config->control_socket;
  control_options.group = config->control_group;
  auto server = control::Server::open(io.get_executor(), daemon, control_options);
  if (!server) {
    throw util::Fatal(util::exit_code::k_failure,
                      fmt::format("daemon: {}", server.error().message));
  }
  daemon.on_shutdown([&server]() { return (*server)->stop(); });

  // Metrics listener (issue 17): bound before READY=1, served on the io loop. Notifications
  // hear the same passes.
  service::Metrics::Options mo;
  mo.store = &*store;
  mo.all_due = [&daemon](service::Time now) {
    std::vector<std::pair<std::string, service::Time>> out;
    if (auto due = daemon.due(now)) {
      out.reserve(due->size());
      for (auto& d : *due) {
        out.emplace_back(std::move(d.slot), d.due);
      }
    }
    return out;
  };
  auto metrics = service::Metrics::create(mo);
  if (auto r = metrics->configure(config); !r) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("daemon: {}", r.error().message));
  }
  metrics->reload_result(true, util::system_clock().now());
  std::unique_ptr<net::MetricsServer> metrics_server;
  if (!config->metrics_listen.empty()) {
    net::MetricsServerOptions so;
    so.listen = config->metrics_listen;
    auto listener =
      net::MetricsServer::start(io.get_executor(), so, [metrics] { return metrics->pieces(); });
    if (!listener) {
      throw util::Fatal(util::exit_code::k_failure,
                        fmt::format("daemon: {}", listener.error().message));
    }
    metrics_server = std::move(*listener);
  }
  service::Notifier::Options no;
  no.targets = config->notify;
  no.retry = config->retry;
  no.store = &*store;
  auto notifier = service::Notifier::create(io.get_executor(), no);
  if (!notifier) {
    std::fputs((notifier.error().message + "\n").c_str(), stderr);
    return util::exit_code::k_config;
  }
  (*notifier)->configure(config);
  daemon.add_observer(metrics.get());
  daemon.add_observer(notifier->get());
  daemon.on_reload([metrics, notifier = *notifier](const service::ReloadVerdict& v,
                                                   const std::shared_ptr<const config::Config>& c) {
    metrics->reload_result(v.ok, util::system_clock().now());
    if (!v.ok) {
      notifier->reload_failed(c->path, v.errors);
      return;
    }
    (void)metrics->configure(c);
    notifier->configure(c);
    if (auto r = notifier->set_targets(c->notify); !r) {
      util::log::error("reload: notify: {}", r.error().message);
    }
  });
  daemon.on_shutdown([&metrics_server, notifier = *notifier]() -> boost::asio::awaitable<void> {
    metrics_server.reset();
    notifier->stop();
    co_return;
  });

  if (auto started = daemon.start(); !started) {
    std::fputs(fmt::format("jenkins-token-rotator: daemon: {}\n", started.error().message).c_str(),
               stderr);
    return started.error().kind == "config" ? util::exit_code::k_config
                                            : util::exit_code::k_failure;
  }
  // The engine exists now: every slot's next rotation shows before the first pass ends.
  (void)metrics->refresh();
  // The daemon, the metrics and the notifier hold the config; this copy of the pointer
  // would keep the first one (10,000 users: ~6 MB) alive after every reload.
  config.reset();
  (*server)->start();
  io.run();
  return util::exit_code::k_ok;
}

} // namespace app
