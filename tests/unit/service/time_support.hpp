#pragma once

#include <chrono>
#include <cstdint>

namespace test {

// The instant `s` seconds after the epoch (service::Time).
inline std::chrono::sys_seconds
at(std::int64_t s)
{
  return std::chrono::sys_seconds{ std::chrono::seconds{ s } };
}

} // namespace test
