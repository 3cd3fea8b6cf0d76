#include "crypto/name_mac.hpp"

#include "crypto/sodium.hpp"

#include <sodium.h>

#include <array>
#include <vector>

namespace crypto {

namespace {

constexpr std::string_view k_domain = "jenkins-token-rotator/token-name/v1";

void
put_u64(std::vector<unsigned char>& out, std::uint64_t v)
{
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<unsigned char>(v >> shift));
  }
}

void
put_field(std::vector<unsigned char>& out, std::string_view s)
{
  put_u64(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

} // namespace

util::Result<std::string>
name_mac(std::string_view key_hex, const NameFields& fields)
{
  if (auto ok = init_sodium(); !ok) {
    return ok.error();
  }
  std::array<unsigned char, 32> key{};
  std::size_t key_len = 0;
  if (key_hex.size() != 2 * key.size() ||
      sodium_hex2bin(key.data(), key.size(), key_hex.data(), key_hex.size(), nullptr, &key_len,
                     nullptr) != 0 ||
      key_len != key.size()) {
    sodium_memzero(key.data(), key.size());
    return util::make_error("crypto", "the token name key is not 64 hex digits");
  }
  std::vector<unsigned char> input;
  put_field(input, k_domain);
  put_field(input, fields.instance);
  put_field(input, fields.controller);
  put_field(input, fields.user_key);
  put_u64(input, static_cast<std::uint64_t>(fields.seq));
  std::array<unsigned char, crypto_generichash_BYTES_MIN> out{};
  crypto_generichash(out.data(), out.size(), input.data(), input.size(), key.data(), key.size());
  sodium_memzero(key.data(), key.size());
  std::array<char, k_name_mac_chars + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), out.data(), k_name_mac_chars / 2);
  return std::string(hex.data(), k_name_mac_chars);
}

bool
name_mac_ok(std::string_view key_hex, const NameFields& fields, std::string_view mac)
{
  const auto want = name_mac(key_hex, fields);
  return want && mac.size() == want->size() &&
         sodium_memcmp(want->data(), mac.data(), mac.size()) == 0;
}

} // namespace crypto
