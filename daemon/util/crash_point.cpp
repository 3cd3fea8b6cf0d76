#include "util/crash_point.hpp"

#if defined(JTR_CRASH_POINTS)
#include <cstdio>
#include <cstdlib>
#include <string>

namespace util {

void
crash_point(std::string_view name)
{
  const char* at = std::getenv("JTR_CRASH_AT");
  if (at == nullptr) {
    return;
  }
  // "NAME" crashes at the first visit, "NAME:N" at the N-th.
  std::string spec(at);
  int nth = 1;
  if (const auto colon = spec.find(':'); colon != std::string::npos) {
    nth = std::atoi(spec.c_str() + colon + 1);
    spec.resize(colon);
  }
  static int visits = 0;
  if (spec == name && ++visits == nth) {
    std::fprintf(stderr, "jenkins-token-rotator: crash point %.*s reached\n",
                 static_cast<int>(name.size()), name.data());
    std::fflush(stderr);
    std::abort();
  }
}

} // namespace util
#endif
