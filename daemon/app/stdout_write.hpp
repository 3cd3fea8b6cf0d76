#pragma once

#include "util/error.hpp"

#include <span>
#include <string_view>

namespace app {

// Writes `text` to stdout with write(2), no stdio buffer in between, so a full disk, a
// closed pipe or /dev/full is an error the caller sees now (issue 19 #9) rather than a
// lost line at exit. Errors name "stdout".
util::Result<void> write_stdout(std::span<const unsigned char> text);
util::Result<void> write_stdout(std::string_view text);

} // namespace app
