#pragma once

#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace util {

// Owns one file descriptor and closes it on every path out.
class UniqueFd
{
public:
  explicit UniqueFd(int fd)
    : m_fd(fd)
  {
  }
  ~UniqueFd()
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  [[nodiscard]] int get() const { return m_fd; }
  // Gives the descriptor up: the caller closes it.
  int release() { return std::exchange(m_fd, -1); }

private:
  int m_fd;
};

// What a file is, in the words of our messages ("expected a regular file, found a FIFO").
inline std::string_view
describe_file_type(mode_t mode)
{
  if (S_ISREG(mode)) {
    return "a file";
  }
  if (S_ISDIR(mode)) {
    return "a directory";
  }
  if (S_ISFIFO(mode)) {
    return "a FIFO";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  if (S_ISCHR(mode) || S_ISBLK(mode)) {
    return "a device";
  }
  return "not a regular file";
}

} // namespace util
