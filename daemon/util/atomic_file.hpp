#pragma once

#include "util/error.hpp"

#include <string>
#include <string_view>
#include <sys/types.h>

// Atomic replacement of a whole file (DESIGN §6): a reader sees the old content or
// the new one, never a partial or empty file, also across a crash.
namespace util {

struct AtomicFileOptions
{
  mode_t mode = 0600;
  // A group name, or a numeric gid; empty keeps the process's group. The process
  // must be a member (checked by us, so that root is refused too).
  std::string group;
};

// Writes `content` to a temp file `.NAME.jtr-tmp-XXXXXX` next to `path`, sets mode and
// group, fsyncs, renames over `path` and fsyncs the directory. Leftover temp files of
// ours for `path` are removed first (the directory is read once per process: only a
// crash leaves them). Thread-safe. Errors name the path; kind "missing" (no parent
// directory), "permission" (EACCES/EPERM, group not ours), "config" (unknown group,
// not a regular target) or "io" (anything else, e.g. ENOSPC). Never includes content.
Result<void> write_file_atomically(const std::string& path, std::string_view content,
                                   const AtomicFileOptions& options = {});

// Removes the temp files a crashed write_file_atomically() left for `path`. Returns how
// many were removed; errors name the directory.
Result<int> remove_stale_temp_files(const std::string& path);

// Resolves a group name or numeric gid and checks that this process is a member
// (effective gid or supplementary groups). Errors name the group.
Result<gid_t> resolve_own_group(const std::string& group);

} // namespace util
