// The Beast side of test_server.hpp: the one test TU that builds Beast's HTTP parser
// and Asio SSL for the loopback server.
#include "test_server.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <sstream>

namespace test_net {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;

Certificate
make_certificate(const std::string& san)
{
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("jtr test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  X509_EXTENSION* bc =
    X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE");
  X509_add_ext(x, bc, -1);
  X509_EXTENSION_free(bc);
  X509_sign(x, key, EVP_sha256());

  Certificate out;
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  out.cert_pem.assign(data, static_cast<std::size_t>(n));
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  n = BIO_get_mem_data(b, &data);
  out.key_pem.assign(data, static_cast<std::size_t>(n));
  BIO_free(b);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

struct TestServer::Impl
{
  Impl(TestServer& o, asio::io_context& context, Handler h, const Certificate* cert,
       const std::string& address)
    : owner(o)
    , ioc(context)
    , acceptor(context, tcp::endpoint(asio::ip::make_address(address), 0))
    , handler(std::move(h))
  {
    if (cert != nullptr) {
      tls = std::make_unique<ssl::context>(ssl::context::tls_server);
      tls->use_certificate_chain(asio::buffer(cert->cert_pem));
      tls->use_private_key(asio::buffer(cert->key_pem), ssl::context::pem);
    }
  }

  asio::awaitable<void> accept_loop()
  {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        co_return;
      }
      ++owner.connections;
      if (owner.connections <= owner.close_first_connections) {
        socket.close();
        continue;
      }
      if (tls) {
        asio::co_spawn(ioc, tls_session(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(ioc, session(beast::tcp_stream(std::move(socket))), asio::detached);
      }
    }
  }

  asio::awaitable<void> tls_session(tcp::socket socket)
  {
    ssl::stream<tcp::socket> stream(std::move(socket), *tls);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server,
                                                asio::as_tuple(asio::use_awaitable));
    if (!ec) {
      co_await serve(stream);
    }
  }

  asio::awaitable<void> session(beast::tcp_stream stream) { co_await serve(stream); }

  template<typename Stream>
  asio::awaitable<void> serve(Stream& stream)
  {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] =
        co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
      if (ec) {
        co_return;
      }
      Seen s{ std::string(req.method_string()), std::string(req.target()), {}, req.body(), {} };
      std::ostringstream head;
      head << req.base();
      s.head = head.str();
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& c : name) {
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        s.headers[name] = std::string(f.value());
      }
      owner.seen.push_back(s);
      ++owner.requests;
      ++owner.in_flight;
      owner.max_in_flight = std::max(owner.max_in_flight, owner.in_flight);
      const Reply r = handler(s, owner.requests);
      if (r.delay.count() > 0) {
        asio::steady_timer t(ioc, r.delay);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      --owner.in_flight;
      if (r.drop) {
        co_return;
      }
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(r.raw),
                                                  asio::as_tuple(asio::use_awaitable));
      if (wec || r.close_after) {
        co_return;
      }
    }
  }

  TestServer& owner;
  asio::io_context& ioc;
  tcp::acceptor acceptor;
  Handler handler;
  std::unique_ptr<ssl::context> tls;
};

TestServer::TestServer(asio::io_context& ioc, Handler handler, const Certificate* cert,
                       const std::string& address)
  : m_impl(std::make_unique<Impl>(*this, ioc, std::move(handler), cert, address))
{
  asio::co_spawn(ioc, m_impl->accept_loop(), asio::detached);
}

TestServer::~TestServer() = default;

unsigned short
TestServer::port() const
{
  return m_impl->acceptor.local_endpoint().port();
}

} // namespace test_net
