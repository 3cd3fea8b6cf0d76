#pragma once

#include "util/error.hpp"
#include "util/secret_text.hpp"

#include <cstddef>
#include <string>
#include <sys/types.h>

// Checks on real files that the config rules of DESIGN §5 need.
namespace config {

// The largest config file we read (the config and the control socket's own view of it).
constexpr std::size_t k_max_config_file_bytes = 64 * 1024 * 1024;

// Reads a regular file of at most `max_bytes` without blocking on a FIFO or a device:
// opened with O_NONBLOCK, fstat'ed, refused unless S_ISREG, then read. `limit` words
// the bound in the error ("64 KiB"). Errors never contain the content.
util::Result<std::string> read_regular_file(const std::string& path, std::size_t max_bytes,
                                            const char* limit);

// Reads a file that holds a secret (an admin token, a `${file:}`): a regular file of at
// most 64 KiB, refused when it is readable by group or others. Errors never contain
// the content.
util::Result<util::WipedString> read_secret_file(const std::string& path);

// The same checks without reading a byte: for a secret someone else reads later (the
// admin token, the signing key), so that config never holds a copy of it.
util::Result<void> check_secret_file(const std::string& path);

// Refuses a file we trust (the config, a recipient key, an admin token file, a
// `${file:}`, an exec hook, the signing key) that someone other than root or this
// process's user could change or swap: the file, every ancestor directory of the path
// as written and of the path with symlinks resolved, and every symlink on the way must
// be owned by root or the effective uid, and none may be writable by group or others,
// except a root-owned sticky directory such as /tmp. The error names the file and the
// offending ancestor.
util::Result<void> check_trusted(const std::string& path);

// `state_dir`, when it exists: a directory owned by the effective uid with mode 0700.
util::Result<void> check_state_dir(const std::string& path);

// Checks that the file exists, is a regular file and can be read by this process.
util::Result<void> check_readable(const std::string& path);

// "0640" for messages.
std::string format_mode(mode_t mode);

} // namespace config
