#include "crypto/harden.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <sys/prctl.h>
#include <sys/resource.h>

namespace crypto {

util::Result<void>
harden_process()
{
  // Both: the kernel ignores RLIMIT_CORE when core_pattern is a pipe (systemd-coredump,
  // core(5)), and the dumpable flag is reset by execve, so a child exec'd later keeps rlimit 0.
  const rlimit none{ 0, 0 };
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return util::make_error(
      "os",
      fmt::format("cannot disable core dumps: setrlimit(RLIMIT_CORE): {}", std::strerror(errno)));
  }
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return util::make_error(
      "os",
      fmt::format("cannot disable core dumps: prctl(PR_SET_DUMPABLE): {}", std::strerror(errno)));
  }
  return {};
}

} // namespace crypto
