#pragma once

#include "config/config.hpp"
#include "config/diagnostics.hpp"

namespace config {

// Validates each user's schedule and time zone, and the lifetime rule of DESIGN §2.3
// (lifetime ≥ longest gap between runs + grace + failure_budget).
void check_schedules(const Config& config, Diagnostics& diagnostics);

} // namespace config
