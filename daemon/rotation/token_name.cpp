#include "rotation/token_name.hpp"

#include "crypto/name_mac.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace rotation {

namespace {

bool
all_hex(std::string_view s)
{
  return std::all_of(s.begin(), s.end(),
                     [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); });
}

bool
all_digits(std::string_view s)
{
  return std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

} // namespace

std::optional<TokenName>
parse_token_name(std::string_view name, std::string_view prefix)
{
  if (!name.starts_with(prefix)) {
    return std::nullopt;
  }
  name.remove_prefix(prefix.size());
  if (name.size() < 8 + 1 + 6 || name[8] != '-') {
    return std::nullopt;
  }
  const auto instance = name.substr(0, 8);
  auto rest = name.substr(9);
  std::optional<std::string> mac;
  if (const auto dash = rest.find('-'); dash != std::string_view::npos) {
    const auto m = rest.substr(dash + 1);
    if (m.size() != crypto::k_name_mac_chars || !all_hex(m)) {
      return std::nullopt;
    }
    mac = std::string(m);
    rest = rest.substr(0, dash);
  }
  if (rest.size() < 6 || rest.size() > 18 || !all_hex(instance) || !all_digits(rest)) {
    return std::nullopt;
  }
  return TokenName{ std::string(instance), std::stoll(std::string(rest)), std::move(mac) };
}

util::Result<std::string>
make_token_name(std::string_view prefix, std::string_view instance, std::string_view key_hex,
                std::string_view controller, std::string_view user_key, state::Seq seq)
{
  auto mac = crypto::name_mac(key_hex, { instance, controller, user_key, seq });
  if (!mac) {
    return mac.error();
  }
  return fmt::format("{}{}-{:06}-{}", prefix, instance, seq, *mac);
}

bool
genuine_token_name(const TokenName& name, std::string_view key_hex, std::string_view controller,
                   std::string_view user_key)
{
  return name.mac &&
         crypto::name_mac_ok(key_hex, { name.instance, controller, user_key, name.seq }, *name.mac);
}

} // namespace rotation
