#include "config/values.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <iterator>

namespace config {

bool
is_name(std::string_view s, std::size_t max_len)
{
  if (s.empty() || s.size() > max_len) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool
is_reserved_header(std::string_view name)
{
  static constexpr std::string_view k_reserved[] = {
    "host", "content-length", "transfer-encoding", "connection",     "keep-alive",
    "te",   "trailer",        "upgrade",           "idempotency-key"
  };
  return std::any_of(std::begin(k_reserved), std::end(k_reserved), [&](std::string_view r) {
    return r.size() == name.size() &&
           std::equal(r.begin(), r.end(), name.begin(), [](char x, char y) {
             return x == std::tolower(static_cast<unsigned char>(y));
           });
  });
}

bool
is_header_name(std::string_view name)
{
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 ||
           std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
  });
}

std::optional<std::size_t>
find_invalid_utf8(std::string_view s)
{
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if (c == 0) {
      return i;
    }
    if (c < 0x80) {
      len = 1;
    } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
      len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
    } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
      len = 4;
    } else {
      return i;
    }
    if (i + len > s.size()) {
      return i;
    }
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return i;
      }
    }
    i += len;
  }
  return std::nullopt;
}

std::optional<Url>
parse_url(const std::string& text)
{
  auto r = boost::urls::parse_absolute_uri(text);
  if (!r) {
    return std::nullopt;
  }
  Url url;
  url.scheme = std::string(r->scheme());
  std::transform(url.scheme.begin(), url.scheme.end(), url.scheme.begin(), ::tolower);
  if (url.scheme != "http" && url.scheme != "https") {
    return std::nullopt;
  }
  if (!r->has_authority() || r->encoded_host().empty() || r->has_userinfo() || r->has_query() ||
      r->has_fragment()) {
    return std::nullopt;
  }
  url.host = std::string(r->encoded_host());
  std::transform(url.host.begin(), url.host.end(), url.host.begin(), ::tolower);
  std::string port = std::string(r->port());
  if (port.empty()) {
    port = url.scheme == "https" ? "443" : "80";
  }
  std::string path = std::string(r->encoded_path());
  if (path.empty() || path.back() != '/') {
    path += '/';
  }
  url.normalised = url.scheme + "://" + url.host + ":" + port + path;
  return url;
}

bool
is_loopback_host(const std::string& host)
{
  return host == "localhost" || host == "[::1]" || host.starts_with("127.");
}

} // namespace config
