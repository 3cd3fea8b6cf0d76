#pragma once

#include "util/error.hpp"

#include <string>
#include <sys/types.h>

// Checks on real file modes that the config rules of DESIGN §5 need.
namespace config {

// Reads a file that holds a secret (an admin token, a `${file:}`): refused when it
// is readable by group or others. Errors never contain the content.
util::Result<std::string> read_secret_file(const std::string& path);

// Refuses a file (and, when check_parent, its directory) that group or others may
// write: someone else could then swap our config, a recipient key or an exec hook.
util::Result<void> check_not_writable_by_others(const std::string& path, bool check_parent);

// Checks that the file exists and can be read by this process.
util::Result<void> check_readable(const std::string& path);

// "0640" for messages.
std::string format_mode(mode_t mode);

} // namespace config
