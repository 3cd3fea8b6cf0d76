#include "util/atomic_file.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <map>
#include <mutex>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace util {

namespace {

constexpr std::string_view k_temp_marker = ".jtr-tmp-";
// mkstemp() replaces exactly six X.
constexpr std::size_t k_temp_random = 6;

struct PathParts
{
  std::string dir;
  std::string name;
};

PathParts
split(const std::string& path)
{
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return { ".", path };
  }
  return { slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1) };
}

std::string
temp_prefix(const std::string& name)
{
  return "." + name + std::string(k_temp_marker);
}

// The target name of one of our temp files (".NAME.jtr-tmp-XXXXXX"), else nothing.
std::optional<std::string_view>
temp_target(std::string_view entry)
{
  const std::size_t tail = k_temp_marker.size() + k_temp_random;
  if (entry.size() <= 1 + tail || entry[0] != '.' ||
      entry.substr(entry.size() - tail, k_temp_marker.size()) != k_temp_marker) {
    return std::nullopt;
  }
  return entry.substr(1, entry.size() - 1 - tail);
}

const char*
kind_of(int err)
{
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return "missing";
    case EACCES:
    case EPERM:
    case EROFS:
      return "permission";
    default:
      return "io";
  }
}

Error
errno_error(int err, const std::string& what)
{
  return make_error(kind_of(err), fmt::format("{}: {}", what, std::strerror(err)));
}

// Closes and unlinks the temp file unless released: every early return cleans up.
class TempFile
{
public:
  TempFile(int fd, std::string path)
    : m_fd(fd)
    , m_path(std::move(path))
  {
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile()
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    if (!m_path.empty()) {
      ::unlink(m_path.c_str());
    }
  }

  [[nodiscard]] int fd() const { return m_fd; }
  [[nodiscard]] const std::string& path() const { return m_path; }

  // close() reports deferred write errors on some file systems (NFS).
  int close()
  {
    const int rc = ::close(m_fd);
    m_fd = -1;
    return rc;
  }
  void renamed() { m_path.clear(); }

private:
  int m_fd;
  std::string m_path;
};

Result<void>
write_all(int fd, std::string_view content, const std::string& temp)
{
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno_error(errno, fmt::format("cannot write {}", temp));
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

} // namespace

Result<gid_t>
resolve_own_group(const std::string& group)
{
  gid_t gid = 0;
  const auto* end = group.data() + group.size();
  if (auto [p, ec] = std::from_chars(group.data(), end, gid); ec == std::errc() && p == end) {
    // A numeric gid, which need not have a name.
  } else {
    std::vector<char> buf(16384);
    struct group gr
    {};
    struct group* found = nullptr;
    const int rc = ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc != 0 || found == nullptr) {
      return make_error("config", fmt::format("group {} does not exist", group));
    }
    gid = gr.gr_gid;
  }
  if (gid == ::getegid()) {
    return gid;
  }
  const int count = ::getgroups(0, nullptr);
  std::vector<gid_t> groups(static_cast<std::size_t>(std::max(count, 0)));
  if (count > 0 && ::getgroups(count, groups.data()) < 0) {
    return errno_error(errno, "cannot read the process's groups");
  }
  if (std::find(groups.begin(), groups.end(), gid) == groups.end()) {
    // Root could chown to any group; refusing keeps the rule the same for every user.
    return make_error("permission",
                      fmt::format("this process is not a member of group {} (gid {}); add the "
                                  "daemon's user to it",
                                  group, gid));
  }
  return gid;
}

Result<int>
remove_stale_temp_files(const std::string& path)
{
  const auto [dir, name] = split(path);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return errno_error(errno, fmt::format("cannot open directory {}", dir));
  }
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    if (temp_target(e->d_name) == name) {
      stale.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  int removed = 0;
  for (const auto& s : stale) {
    const std::string p = dir + "/" + s;
    if (::unlink(p.c_str()) == 0) {
      ++removed;
    } else if (errno != ENOENT) {
      return errno_error(errno, fmt::format("cannot remove stale temp file {}", p));
    }
  }
  return removed;
}

namespace {

// Removes the leftovers of crashed writes for `name` in `dir`. Only a crash leaves
// them, so each directory is read once per process: the first write into it notes
// every leftover by target, and each later write removes its own. Reading the directory
// at every write would cost O(files) each (1,000 sinks in one directory: a million
// entries per pass, tests/bench/full-pass).
Result<void>
remove_stale_temp_files_once(const std::string& dir, const std::string& name)
{
  static std::mutex mutex;
  // dir -> target name -> leftover entries not yet removed.
  static std::map<std::string, std::map<std::string, std::vector<std::string>>> leftovers;
  std::lock_guard lock(mutex);
  auto it = leftovers.find(dir);
  if (it == leftovers.end()) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      return errno_error(errno, fmt::format("cannot open directory {}", dir));
    }
    std::map<std::string, std::vector<std::string>> found;
    while (const dirent* e = ::readdir(d)) {
      if (const auto target = temp_target(e->d_name)) {
        found[std::string(*target)].emplace_back(e->d_name);
      }
    }
    ::closedir(d);
    it = leftovers.emplace(dir, std::move(found)).first;
  }
  const auto mine = it->second.find(name);
  if (mine == it->second.end()) {
    return {};
  }
  for (const auto& entry : mine->second) {
    const std::string p = dir + "/" + entry;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
      return errno_error(errno, fmt::format("cannot remove stale temp file {}", p));
    }
  }
  it->second.erase(mine);
  return {};
}

} // namespace

Result<void>
write_file_atomically(const std::string& path, std::string_view content,
                      const AtomicFileOptions& options)
{
  const auto [dir, name] = split(path);
  if (name.empty() || name == "." || name == "..") {
    return make_error("config", fmt::format("{}: expected a file name", path));
  }
  struct stat dst
  {};
  if (::stat(dir.c_str(), &dst) != 0) {
    return errno_error(errno, fmt::format("directory {} of {}", dir, path));
  }
  if (!S_ISDIR(dst.st_mode)) {
    return make_error("missing", fmt::format("{} of {}: not a directory", dir, path));
  }
  struct stat st
  {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return make_error("config", fmt::format("{}: expected a file, found a directory", path));
  }
  std::optional<gid_t> gid;
  if (!options.group.empty()) {
    auto g = resolve_own_group(options.group);
    if (!g) {
      return make_error(g.error().kind, fmt::format("{}: {}", path, g.error().message));
    }
    gid = *g;
  }
  if (auto r = remove_stale_temp_files_once(dir, name); !r) {
    return r.error();
  }

  std::string templ = dir + "/" + temp_prefix(name) + std::string(k_temp_random, 'X');
  // mkstemp creates the file 0600 (O_EXCL): nobody else can open it before fchmod.
  const int fd = ::mkostemp(templ.data(), O_CLOEXEC);
  if (fd < 0) {
    return errno_error(errno,
                       fmt::format("cannot create a temporary file in {} for {}", dir, path));
  }
  TempFile temp(fd, templ);
  if (auto r = write_all(temp.fd(), content, temp.path()); !r) {
    return r;
  }
  // chown may clear set-id bits, so the group comes before the mode.
  if (gid && ::fchown(temp.fd(), static_cast<uid_t>(-1), *gid) != 0) {
    return errno_error(errno, fmt::format("cannot give {} to group {}", path, options.group));
  }
  if (::fchmod(temp.fd(), options.mode & 07777) != 0) {
    return errno_error(errno, fmt::format("cannot set the mode of {}", temp.path()));
  }
  if (::fsync(temp.fd()) != 0) {
    return errno_error(errno, fmt::format("cannot fsync {}", temp.path()));
  }
  if (temp.close() != 0) {
    return errno_error(errno, fmt::format("cannot close {}", temp.path()));
  }
  if (::rename(temp.path().c_str(), path.c_str()) != 0) {
    return errno_error(errno, fmt::format("cannot rename {} to {}", temp.path(), path));
  }
  temp.renamed();
  // The rename is durable only once the directory entry is on disk.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    return errno_error(errno, fmt::format("cannot open directory {} to fsync it", dir));
  }
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) {
    return errno_error(err, fmt::format("cannot fsync directory {}", dir));
  }
  return {};
}

} // namespace util
