#include "net/metrics_server.hpp"

#include "net/use_tuple.hpp"
#include "util/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/core.h>

#include <exception>
#include <set>
#include <utility>

namespace net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string
describe(const tcp::endpoint& ep)
{
  const auto a = ep.address();
  return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), ep.port())
                   : fmt::format("{}:{}", a.to_string(), ep.port());
}

// HOST:PORT → an endpoint; a name is resolved now (start-up, before READY: localhost and
// /etc/hosts names; the first address wins).
util::Result<tcp::endpoint>
parse_listen(const asio::any_io_executor& executor, const std::string& listen)
{
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return util::make_error(
      "config", fmt::format("metrics.listen: expected HOST:PORT, found \"{}\"", listen));
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port_number = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || port_number > 65535) {
      port_number = 70000;
      break;
    }
    port_number = port_number * 10 + static_cast<unsigned>(c - '0');
  }
  if (port.empty() || port_number > 65535) {
    return util::make_error("config", fmt::format("metrics.listen: bad port in \"{}\"", listen));
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    return tcp::endpoint(address, static_cast<unsigned short>(port_number));
  }
  tcp::resolver resolver(executor);
  auto results =
    resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return util::make_error("config", fmt::format("metrics.listen: cannot resolve \"{}\": {}", host,
                                                  ec ? ec.message() : "no address"));
  }
  return results.begin()->endpoint();
}

void
log_exception(std::exception_ptr e)
{
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    util::log::error("metrics: a connection failed: {}", ex.what());
  } catch (...) {
    util::log::error("metrics: a connection failed");
  }
}

} // namespace

bool
is_loopback_listen(const std::string& listen)
{
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon == std::string::npos ? listen.size() : colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") {
    return true;
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

struct MetricsServer::State : std::enable_shared_from_this<MetricsServer::State>
{
  State(asio::any_io_executor ex, MetricsServerOptions o, std::function<BodyPieces()> b)
    : executor(std::move(ex))
    , options(std::move(o))
    , begin(std::move(b))
    , acceptor(executor)
  {
  }

  asio::any_io_executor executor;
  MetricsServerOptions options;
  std::function<BodyPieces()> begin;
  tcp::acceptor acceptor;
  std::set<beast::tcp_stream*> connections;
  bool stopped = false;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(tcp::socket socket);
  void stop();
};

asio::awaitable<void>
MetricsServer::State::accept_loop()
{
  auto self = shared_from_this();
  while (!stopped) {
    auto [ec, socket] = co_await acceptor.async_accept(k_tuple);
    if (stopped) {
      co_return;
    }
    if (ec) {
      // EMFILE and the like: wait a little instead of spinning on the error.
      util::log::warning("metrics: accept failed: {}", ec.message());
      asio::steady_timer pause(executor, std::chrono::milliseconds(200));
      co_await pause.async_wait(k_tuple);
      continue;
    }
    if (connections.size() >= static_cast<std::size_t>(options.max_connections)) {
      boost::system::error_code ignored;
      socket.close(ignored); // a scraper opens one at a time; more is noise or an attack
      continue;
    }
    asio::co_spawn(executor, serve(std::move(socket)), log_exception);
  }
}

asio::awaitable<void>
MetricsServer::State::serve(tcp::socket socket)
{
  auto self = shared_from_this();
  beast::tcp_stream stream(std::move(socket));
  connections.insert(&stream);
  struct Unregister
  {
    State& state;
    beast::tcp_stream* stream;
    ~Unregister() { state.connections.erase(stream); }
  } unregister{ *this, &stream };

  // One deadline for the whole request: a slow sender is dropped when it passes, and the
  // header limit bounds what it can make us buffer.
  beast::flat_buffer buffer(options.header_limit);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
  stream.expires_after(options.read_timeout);
  auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, k_tuple);
  (void)read_n;
  if (read_ec) {
    co_return; // timed out, too large, not HTTP or gone: nothing to answer
  }
  const auto& request = parser.get();
  auto target = request.target();
  target = target.substr(0, target.find('?'));

  stream.expires_after(options.write_timeout);
  if (request.method() != http::verb::get || target != "/metrics") {
    http::response<http::string_body> res{ http::status::not_found, request.version() };
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.keep_alive(false);
    res.body() = "not found: only GET /metrics is served here\n";
    res.prepare_payload();
    co_await http::async_write(stream, res, k_tuple);
  } else {
    http::response<http::empty_body> res{ http::status::ok, request.version() };
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.keep_alive(false);
    // Chunked, so a scrape cut short shows as truncated instead of parsing as a whole
    // text with series missing.
    res.chunked(true);
    http::response_serializer<http::empty_body> serializer(res);
    auto [head_ec, head_n] = co_await http::async_write_header(stream, serializer, k_tuple);
    (void)head_n;
    if (head_ec) {
      co_return;
    }
    auto pieces = begin();
    std::string piece;
    bool more = true;
    while (more) {
      piece.clear();
      more = pieces(piece);
      if (piece.empty()) {
        continue;
      }
      stream.expires_after(options.write_timeout);
      auto [ec, n] =
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(piece)), k_tuple);
      (void)n;
      if (ec) {
        co_return; // a reader slower than write_timeout per piece is dropped
      }
    }
    stream.expires_after(options.write_timeout);
    co_await asio::async_write(stream, http::make_chunk_last(), k_tuple);
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

void
MetricsServer::State::stop()
{
  stopped = true;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  for (auto* stream : connections) {
    stream->socket().close(ignored); // their coroutines end with operation_aborted
  }
}

util::Result<std::unique_ptr<MetricsServer>>
MetricsServer::start(asio::any_io_executor executor, MetricsServerOptions options,
                     std::function<BodyPieces()> begin)
{
  auto endpoint = parse_listen(executor, options.listen);
  if (!endpoint) {
    return endpoint.error();
  }
  auto state = std::make_shared<State>(executor, std::move(options), std::move(begin));
  boost::system::error_code ec;
  state->acceptor.open(endpoint->protocol(), ec);
  if (!ec) {
    state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    state->acceptor.bind(*endpoint, ec);
  }
  if (!ec) {
    state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return util::make_error("io", fmt::format("metrics.listen: cannot listen on {}: {}",
                                              state->options.listen, ec.message()));
  }
  auto bound = state->acceptor.local_endpoint(ec);
  if (endpoint->address().is_loopback()) {
    util::log::info("metrics: serving GET /metrics on {}", describe(bound));
  } else {
    util::log::warning("metrics: serving GET /metrics on {}, not a loopback address: whoever "
                       "reaches it reads every slot's name and schedule (never a token)",
                       describe(bound));
  }
  asio::co_spawn(state->executor, state->accept_loop(), log_exception);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(state)));
}

MetricsServer::MetricsServer(std::shared_ptr<State> state)
  : m_state(std::move(state))
{
}

MetricsServer::~MetricsServer()
{
  m_state->stop();
}

unsigned short
MetricsServer::port() const
{
  boost::system::error_code ec;
  return m_state->acceptor.local_endpoint(ec).port();
}

} // namespace net
