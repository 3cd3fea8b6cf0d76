#pragma once

#include <string_view>

namespace util {

// Test builds only (cmake -DJTR_CRASH_POINTS=ON): aborts the process when the
// environment variable JTR_CRASH_AT names this point, so the crash-matrix tests can
// stop `once` at every step of a rotation and check what a restart makes of it.
// Release builds compile every call to nothing: the names are not even in the binary.
#if defined(JTR_CRASH_POINTS)
void crash_point(std::string_view name);
#else
inline void
crash_point(std::string_view)
{
}
#endif

} // namespace util
