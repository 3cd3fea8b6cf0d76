#pragma once

#include "util/error.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace util {

using Seconds = std::chrono::seconds;

// Parses "90s", "15m", "24h", "7d", "2w" and concatenations such as "1h30m".
// Returns an error whose message says what was expected; never throws.
Result<Seconds> parse_duration(std::string_view text);

// Formats a duration in the largest units that keep it exact: "1d12h", "30m", "0s".
std::string format_duration(Seconds d);

} // namespace util
