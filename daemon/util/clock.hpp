#pragma once

#include <chrono>

namespace util {

using Time = std::chrono::sys_seconds;

// The wall clock the engine and the daemon read (DESIGN §8: instants are wall-clock
// seconds). An interface so the engine's unit tests can drive time by hand.
class Clock
{
public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Time now() const = 0;
};

// The system clock. In test builds (-DJTR_CRASH_POINTS=ON, never a release) the file named
// by $JTR_CLOCK_FILE, when it exists, holds an offset in seconds added to every reading,
// re-read each time, so a test can jump the daemon's clock without waiting real minutes.
const Clock& system_clock();

// A clock that says what it is told (tests).
class ManualClock : public Clock
{
public:
  explicit ManualClock(Time start)
    : m_now(start)
  {
  }
  [[nodiscard]] Time now() const override { return m_now; }
  void set(Time t) { m_now = t; }
  void advance(std::chrono::seconds d) { m_now += d; }

private:
  Time m_now;
};

} // namespace util
