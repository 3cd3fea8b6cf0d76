#pragma once

#include "util/error.hpp"

#include <string>

namespace state {

// An exclusive flock(2) on `state_dir/lock`, held for the Store's life: one process at a
// time uses the state (DESIGN §3). The holder's pid is written into the file so that the
// refusal can name it. The kernel drops the lock when the process dies.
class DirLock
{
public:
  // Takes the lock without waiting. Error kind "locked" names the file and, when the
  // holder wrote it, the holder's pid.
  static util::Result<DirLock> acquire(const std::string& path);

  ~DirLock();
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  [[nodiscard]] const std::string& path() const { return m_path; }

private:
  DirLock(std::string path, int fd);

  std::string m_path;
  int m_fd = -1;
};

} // namespace state
