#include "app/harden_first.hpp"

#include "crypto/harden.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

namespace app {

void
harden_first(std::string_view command)
{
  if (auto ok = crypto::harden_process(); !ok) {
    throw util::Fatal(
      util::exit_code::k_failure,
      fmt::format("{}: cannot protect this process's secrets: {}", command, ok.error().message));
  }
}

} // namespace app
