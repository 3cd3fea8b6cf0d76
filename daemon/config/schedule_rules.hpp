#pragma once

#include "config/config.hpp"
#include "config/diagnostics.hpp"

namespace config {

// Validates each user's schedule and time zone, and the lifetime rule of DESIGN §2.3
// (lifetime ≥ longest gap between runs + grace + failure_budget), and fills each
// Policy's parsed_schedule and zone (each distinct text parsed once).
void check_schedules(Config& config, Diagnostics& diagnostics);

} // namespace config
