#include "jenkins/base64.hpp"

#include <array>

namespace jenkins::base64 {

namespace {

constexpr std::string_view k_alphabet =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<signed char, 256>
make_table()
{
  std::array<signed char, 256> t{};
  for (auto& v : t) {
    v = -1;
  }
  for (std::size_t i = 0; i < k_alphabet.size(); ++i) {
    t[static_cast<unsigned char>(k_alphabet[i])] = static_cast<signed char>(i);
  }
  return t;
}

constexpr auto k_table = make_table();

} // namespace

std::string
encode(std::string_view bytes)
{
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(bytes[i]) << 16) |
                   (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                   static_cast<unsigned char>(bytes[i + 2]);
    out += k_alphabet[(n >> 18) & 63];
    out += k_alphabet[(n >> 12) & 63];
    out += k_alphabet[(n >> 6) & 63];
    out += k_alphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    auto n = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) {
      n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    }
    out += k_alphabet[(n >> 18) & 63];
    out += k_alphabet[(n >> 12) & 63];
    out += rest == 2 ? k_alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::size_t>
decode(std::string_view text, char* out)
{
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::size_t o = 0;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) {
        return std::nullopt; // data after padding
      }
      v[k] = k_table[static_cast<unsigned char>(c)];
      if (v[k] < 0) {
        return std::nullopt;
      }
    }
    const unsigned n = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                       (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
    // Canonical form only: the bits a padded group drops must be zero.
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) {
      return std::nullopt;
    }
    out[o++] = static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) {
      out[o++] = static_cast<char>((n >> 8) & 0xff);
    }
    if (pad < 1) {
      out[o++] = static_cast<char>(n & 0xff);
    }
  }
  return o;
}

std::optional<std::string>
decode(std::string_view text)
{
  std::string out(max_decoded_size(text.size()), '\0');
  const auto n = decode(text, out.data());
  if (!n) {
    return std::nullopt;
  }
  out.resize(*n);
  return out;
}

} // namespace jenkins::base64
