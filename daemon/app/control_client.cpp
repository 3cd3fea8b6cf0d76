#include "app/control_client.hpp"

#include "config/control_socket.hpp"
#include "control/client.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <grp.h>
#include <sys/stat.h>

namespace app {

namespace {

// The group that may use the socket: the socket file's group (what the daemon set from
// control.group), named even when the operator passed --socket.
std::string
socket_group(const std::string& path)
{
  struct stat st
  {};
  if (::stat(path.c_str(), &st) != 0) {
    return {};
  }
  if (const group* g = ::getgrgid(st.st_gid); g != nullptr) {
    return g->gr_name;
  }
  return std::to_string(st.st_gid);
}

} // namespace

std::string
control_socket_path(const Args& args)
{
  if (auto socket = args.option("socket")) {
    if (socket->empty()) {
      throw util::Fatal(util::exit_code::k_usage, "--socket: expected a path");
    }
    return *socket;
  }
  auto path = config::read_control_socket(args.config_path());
  if (!path) {
    throw util::Fatal(util::exit_code::k_config, path.error().message);
  }
  return *path;
}

control::Answer
ask_daemon(const std::string& socket_path, const control::Request& request,
           std::optional<std::chrono::milliseconds> timeout)
{
  auto answer = control::call(socket_path, request, timeout);
  if (answer) {
    return std::move(*answer);
  }
  const auto& e = answer.error();
  if (e.kind == "unavailable") {
    throw util::Fatal(util::exit_code::k_unavailable, e.message);
  }
  if (e.kind == "permission") {
    const auto group = socket_group(socket_path);
    throw util::Fatal(util::exit_code::k_failure,
                      group.empty() || group == "root"
                        ? fmt::format("{}: run as root or as the daemon's user", e.message)
                        : fmt::format("{}: join the group {} (or run as root)", e.message, group));
  }
  throw util::Fatal(util::exit_code::k_failure, e.message);
}

std::string
text_or_dash(const nlohmann::json& value, const char* key)
{
  const auto it = value.find(key);
  if (it == value.end() || it->is_null()) {
    return "-";
  }
  if (it->is_string()) {
    return it->get<std::string>();
  }
  return it->dump();
}

std::string
fit(std::string text, std::size_t width)
{
  if (text.size() <= width) {
    return text;
  }
  if (width <= 3) {
    return text.substr(0, width);
  }
  text.resize(width - 3);
  return text + "...";
}

} // namespace app
