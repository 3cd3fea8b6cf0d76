#include "util/clock.hpp"

#if defined(JTR_CRASH_POINTS)
#include <cstdio>
#include <cstdlib>
#endif

namespace util {

namespace {

class SystemClock : public Clock
{
public:
  [[nodiscard]] Time now() const override
  {
    return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + offset();
  }

private:
  static std::chrono::seconds offset()
  {
#if defined(JTR_CRASH_POINTS)
    const char* path = std::getenv("JTR_CLOCK_FILE");
    if (path == nullptr) {
      return std::chrono::seconds{ 0 };
    }
    std::FILE* f = std::fopen(path, "re");
    if (f == nullptr) {
      return std::chrono::seconds{ 0 };
    }
    long long seconds = 0;
    if (std::fscanf(f, "%lld", &seconds) != 1) {
      seconds = 0;
    }
    std::fclose(f);
    return std::chrono::seconds{ seconds };
#else
    return std::chrono::seconds{ 0 };
#endif
  }
};

} // namespace

const Clock&
system_clock()
{
  static const SystemClock clock;
  return clock;
}

} // namespace util
