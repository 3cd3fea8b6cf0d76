#pragma once

// A loopback HTTP(S) server for the net/ and sinks/ tests: answers each request with
// bytes the test chooses, so drops, hangs, garbage and odd statuses are easy to
// produce. Beast and Asio SSL stay in test_server.cpp, so the test TUs that include
// this header do not each pay for a Beast build (DESIGN §11).

#include <boost/asio.hpp>
#include <fmt/core.h>

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
using tcp = asio::ip::tcp;

// A self-signed certificate and key made with OpenSSL, in PEM.
struct Certificate
{
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA certificate for `san` ("IP:127.0.0.1", "DNS:localhost").
Certificate make_certificate(const std::string& san);

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
  std::string head; // the request line and every header field as received
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

  // Listens on `address` at a free port; with `cert`, speaks TLS. Serves on `ioc`.
  TestServer(asio::io_context& ioc, Handler handler, const Certificate* cert = nullptr,
             const std::string& address = "127.0.0.1");
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  [[nodiscard]] unsigned short port() const;

  int connections = 0;
  int requests = 0;
  int in_flight = 0;
  int max_in_flight = 0;
  int close_first_connections = 0; // closed right after accept, before any TLS handshake
  std::vector<Seen> seen;

  struct Impl;

private:
  std::unique_ptr<Impl> m_impl;
};

} // namespace test_net
