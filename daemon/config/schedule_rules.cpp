#include "config/schedule_rules.hpp"

namespace config {

void
check_schedules(const Config&, Diagnostics&)
{
  // The schedule module (issue 3) supplies the checks; until it lands nothing is
  // checked here and `check-config` says so in --help.
}

} // namespace config
