#pragma once

// A loopback HTTP(S) server for the net/ tests: answers each request with bytes the
// test chooses, so drops, hangs, garbage and odd statuses are easy to produce.
// Header-only and included by one test TU (Beast is expensive to build).

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/core.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace test_net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A self-signed certificate and key made with OpenSSL, in PEM.
struct Certificate
{
  std::string cert_pem;
  std::string key_pem;
};

inline Certificate
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

// A temporary directory removed at the end of the test.
struct TempDir
{
  std::filesystem::path path;
  TempDir()
  {
    std::string tmpl = (std::filesystem::temp_directory_path() / "jtr-net-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir()
  {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const
  {
    const auto p = path / name;
    std::ofstream(p) << text;
    return p.string();
  }
};

struct Seen
{
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers; // lower-case names
  std::string body;
};

struct Reply
{
  std::string raw;          // bytes to write
  bool close_after = false; // close the connection after writing
  bool drop = false;        // close without answering
  std::chrono::milliseconds delay{ 0 };
};

inline std::string
http_reply(int status, const std::string& body, const std::string& extra_headers = {},
           const std::string& content_type = "text/plain;charset=UTF-8")
{
  return fmt::format("HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n{}", status,
                     content_type, body.size(), extra_headers, body);
}

class TestServer
{
public:
  using Handler = std::function<Reply(const Seen&, int index)>;

  TestServer(asio::io_context& ioc, Handler handler, const Certificate* cert = nullptr,
             const std::string& address = "127.0.0.1")
    : m_ioc(ioc)
    , m_acceptor(ioc, tcp::endpoint(asio::ip::make_address(address), 0))
    , m_handler(std::move(handler))
  {
    if (cert != nullptr) {
      m_tls = std::make_unique<ssl::context>(ssl::context::tls_server);
      m_tls->use_certificate_chain(asio::buffer(cert->cert_pem));
      m_tls->use_private_key(asio::buffer(cert->key_pem), ssl::context::pem);
    }
    asio::co_spawn(ioc, accept_loop(), asio::detached);
  }

  unsigned short port() const { return m_acceptor.local_endpoint().port(); }

  int connections = 0;
  int requests = 0;
  int in_flight = 0;
  int max_in_flight = 0;
  int close_first_connections = 0; // closed right after accept, before any TLS handshake
  std::vector<Seen> seen;

private:
  asio::awaitable<void> accept_loop()
  {
    for (;;) {
      auto [ec, socket] = co_await m_acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        co_return;
      }
      ++connections;
      if (connections <= close_first_connections) {
        socket.close();
        continue;
      }
      if (m_tls) {
        asio::co_spawn(m_ioc, tls_session(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(m_ioc, session(beast::tcp_stream(std::move(socket))), asio::detached);
      }
    }
  }

  asio::awaitable<void> tls_session(tcp::socket socket)
  {
    ssl::stream<tcp::socket> stream(std::move(socket), *m_tls);
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
      Seen s{ std::string(req.method_string()), std::string(req.target()), {}, req.body() };
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& c : name) {
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        s.headers[name] = std::string(f.value());
      }
      seen.push_back(s);
      ++requests;
      ++in_flight;
      max_in_flight = std::max(max_in_flight, in_flight);
      const Reply r = m_handler(s, requests);
      if (r.delay.count() > 0) {
        asio::steady_timer t(m_ioc, r.delay);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      --in_flight;
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

  asio::io_context& m_ioc;
  tcp::acceptor m_acceptor;
  Handler m_handler;
  std::unique_ptr<ssl::context> m_tls;
};

} // namespace test_net
