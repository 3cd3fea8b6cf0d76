#include "config/config.hpp"

namespace config {

const Controller*
Config::find_controller(const std::string& name) const
{
  for (const auto& c : controllers) {
    if (c.name == name) {
      return &c;
    }
  }
  return nullptr;
}

const Recipient*
Config::find_recipient(const std::string& name) const
{
  for (const auto& r : recipients) {
    if (r.name == name) {
      return &r;
    }
  }
  return nullptr;
}

const char*
to_string(SinkType type)
{
  switch (type) {
    case SinkType::file:
      return "file";
    case SinkType::exec:
      return "exec";
    case SinkType::http:
      return "http";
  }
  return "file";
}

const char*
to_string(PrunePolicy policy)
{
  return policy == PrunePolicy::all ? "all" : "managed";
}

const char*
to_string(Auth auth)
{
  return auth == Auth::self ? "self" : "admin";
}

const char*
to_string(AdminTokenStore store)
{
  return store == AdminTokenStore::file ? "file" : "state";
}

AdminTokenRotation
default_admin_token_rotation()
{
  AdminTokenRotation a;
  a.policy.schedule = "every 30d";
  a.policy.grace = std::chrono::hours(1);
  a.policy.lifetime = std::chrono::hours(24 * 40);
  a.policy.token_prefix = "rotator-admin-";
  return a;
}

std::string
fold_user_id(std::string_view id)
{
  // Jenkins folds with toLowerCase(Locale.ENGLISH); ASCII folding matches it for
  // the names Jenkins realms accept in practice.
  std::string out(id);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string
slot_key(std::string_view controller, std::string_view user)
{
  std::string key;
  key.reserve(controller.size() + user.size() + 1);
  key.append(controller);
  key.push_back('\n');
  key.append(fold_user_id(user));
  return key;
}

} // namespace config
