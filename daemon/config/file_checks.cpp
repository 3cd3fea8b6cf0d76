#include "config/file_checks.hpp"

#include "util/unique_fd.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace config {

namespace {

// Secrets and keys are small; a bound keeps a mistaken path (/dev/zero) harmless.
constexpr std::size_t k_max_secret_bytes = 64 * 1024;

// Opens without blocking (a FIFO would wait for a writer forever), fstat()s, requires
// a regular file and checks it with `check` before reading a byte.
template<typename Text, typename Check>
util::Result<Text>
read_checked(const std::string& path, std::size_t max_bytes, const char* limit, bool say_kind,
             Check&& check)
{
  const util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    return util::make_error("io", fmt::format("cannot be read: {}", std::strerror(errno)));
  }
  struct stat st
  {};
  if (::fstat(fd.get(), &st) != 0) {
    return util::make_error("io", fmt::format("cannot be read: {}", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return util::make_error("io", say_kind ? fmt::format("expected a regular file, found {}",
                                                         util::describe_file_type(st.st_mode))
                                           : std::string("expected a regular file"));
  }
  if (auto r = check(st); !r) {
    return r.error();
  }
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    return util::make_error("size", fmt::format("expected at most {}, found a larger file", limit));
  }
  Text content;
  // One allocation for the whole file: growing would leave copies behind.
  content.reserve(static_cast<std::size_t>(st.st_size) + 1);
  char buf[4096];
  struct WipeBuf
  {
    char* data;
    ~WipeBuf() { util::wipe(data, 4096); }
  } const wipe_buf{ buf };
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return util::make_error("io", fmt::format("cannot be read: {}", std::strerror(errno)));
    }
    if (n == 0) {
      break;
    }
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > max_bytes) {
      return util::make_error("size",
                              fmt::format("expected at most {}, found a larger file", limit));
    }
  }
  return content;
}

// "root" or "root or uid 1000 (this process)".
std::string
allowed_owners(uid_t me)
{
  return me == 0 ? std::string("root") : fmt::format("root or uid {} (this process)", me);
}

bool
owner_ok(uid_t owner, uid_t me)
{
  return owner == 0 || owner == me;
}

// The path made absolute and lexically normal, without resolving symlinks.
std::string
absolute_normal(const std::string& path)
{
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  if (ec) {
    return path;
  }
  auto s = abs.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') {
    s.pop_back();
  }
  return s;
}

// "/a/b/c" -> "/a/b", "/a/b" ... "/".
std::vector<std::string>
ancestors(const std::string& abs)
{
  std::vector<std::string> out;
  std::string p = abs;
  for (;;) {
    const auto slash = p.rfind('/');
    if (slash == std::string::npos) {
      break;
    }
    p = slash == 0 ? "/" : p.substr(0, slash);
    out.push_back(p);
    if (p == "/") {
      break;
    }
  }
  return out;
}

// One directory on the way to a trusted file. `suffix` names the file in the message.
util::Result<void>
check_directory(const std::string& dir, const struct stat& st, uid_t me, const std::string& suffix)
{
  const bool root_sticky = st.st_uid == 0 && (st.st_mode & S_ISVTX) != 0;
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !root_sticky) {
    return util::make_error(
      "permission",
      fmt::format("expected directory {} not writable by group or others, found mode {}{}", dir,
                  format_mode(st.st_mode), suffix));
  }
  if (!owner_ok(st.st_uid, me)) {
    return util::make_error("permission",
                            fmt::format("expected directory {} owned by {}, found uid {}{}", dir,
                                        allowed_owners(me), st.st_uid, suffix));
  }
  return {};
}

} // namespace

std::string
format_mode(mode_t mode)
{
  return fmt::format("{:04o}", mode & 07777);
}

util::Result<std::string>
read_regular_file(const std::string& path, std::size_t max_bytes, const char* limit)
{
  return read_checked<std::string>(path, max_bytes, limit, true,
                                   [](const struct stat&) -> util::Result<void> { return {}; });
}

namespace {

util::Result<void>
check_secret_mode(const struct stat& st)
{
  if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    return util::make_error(
      "permission",
      fmt::format("expected a file not readable by group or others (chmod 0600), found mode {}",
                  format_mode(st.st_mode)));
  }
  return {};
}

} // namespace

util::Result<util::WipedString>
read_secret_file(const std::string& path)
{
  return read_checked<util::WipedString>(path, k_max_secret_bytes, "64 KiB", false,
                                         &check_secret_mode);
}

util::Result<void>
check_secret_file(const std::string& path)
{
  const util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    return util::make_error("io", fmt::format("cannot be read: {}", std::strerror(errno)));
  }
  struct stat st
  {};
  if (::fstat(fd.get(), &st) != 0) {
    return util::make_error("io", fmt::format("cannot be read: {}", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return util::make_error("io", "expected a regular file");
  }
  return check_secret_mode(st);
}

util::Result<void>
check_trusted(const std::string& path)
{
  const uid_t me = ::geteuid();
  struct stat st
  {};
  if (::stat(path.c_str(), &st) != 0) {
    return util::make_error("io", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  const std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr),
                                                         &std::free);
  if (!real) {
    return util::make_error("io", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  const std::string resolved(real.get());
  const std::string written = absolute_normal(path);
  const bool via_symlink = resolved != written;
  const std::string shown = via_symlink ? fmt::format("{} (resolved to {})", path, resolved) : path;

  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return util::make_error(
      "permission", fmt::format("expected {} not writable by group or others, found mode {}", shown,
                                format_mode(st.st_mode)));
  }
  if (!owner_ok(st.st_uid, me)) {
    return util::make_error("permission", fmt::format("expected {} owned by {}, found uid {}",
                                                      shown, allowed_owners(me), st.st_uid));
  }

  std::set<std::string> seen;
  // The path as written: whoever may write one of its directories, or owns a symlink
  // on it, may point it elsewhere. lstat(): a symlink is judged by its owner (its
  // mode is always 0777); the directories it leads to are judged below.
  std::vector<std::string> chain = ancestors(written);
  const std::string written_parent = chain.empty() ? std::string() : chain.front();
  chain.insert(chain.begin(), written);
  for (const auto& p : chain) {
    struct stat lst
    {};
    if (::lstat(p.c_str(), &lst) != 0) {
      return util::make_error("io", fmt::format("{}: {}", p, std::strerror(errno)));
    }
    if (S_ISLNK(lst.st_mode)) {
      if (!owner_ok(lst.st_uid, me)) {
        return util::make_error(
          "permission",
          fmt::format("expected symlink {} owned by {}, found uid {} (on the way to {})", p,
                      allowed_owners(me), lst.st_uid, path));
      }
      continue;
    }
    if (p == written || !S_ISDIR(lst.st_mode)) {
      continue;
    }
    seen.insert(p);
    // The file's own directory keeps the message it always had: the mark names the file.
    const std::string suffix = p == written_parent ? "" : fmt::format(" (an ancestor of {})", path);
    if (auto r = check_directory(p, lst, me, suffix); !r) {
      return r;
    }
  }
  // The path with symlinks resolved: the directories the file really lives in.
  for (const auto& dir : ancestors(resolved)) {
    if (!seen.insert(dir).second) {
      continue;
    }
    struct stat dst
    {};
    if (::stat(dir.c_str(), &dst) != 0) {
      return util::make_error("io", fmt::format("{}: {}", dir, std::strerror(errno)));
    }
    if (auto r = check_directory(
          dir, dst, me, fmt::format(" (an ancestor of {}, where {} leads)", resolved, path));
        !r) {
      return r;
    }
  }
  return {};
}

util::Result<void>
check_state_dir(const std::string& path)
{
  struct stat st
  {};
  if (::stat(path.c_str(), &st) != 0) {
    return {}; // created with mode 0700 when the state is first opened
  }
  if (!S_ISDIR(st.st_mode)) {
    return util::make_error(
      "io", fmt::format("expected a directory, found {}", util::describe_file_type(st.st_mode)));
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != me) {
    return util::make_error("permission",
                            fmt::format("expected a directory owned by uid {} (this process), "
                                        "found uid {}",
                                        me, st.st_uid));
  }
  if ((st.st_mode & 07777) != 0700) {
    return util::make_error(
      "permission",
      fmt::format("expected a directory only its owner may use (chmod 0700), found mode {}",
                  format_mode(st.st_mode)));
  }
  return {};
}

util::Result<void>
check_readable(const std::string& path)
{
  struct stat st
  {};
  if (::stat(path.c_str(), &st) != 0) {
    return util::make_error("io", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return util::make_error("io", fmt::format("{}: expected a regular file", path));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return util::make_error("io", fmt::format("{}: {}", path, std::strerror(errno)));
  }
  return {};
}

} // namespace config
