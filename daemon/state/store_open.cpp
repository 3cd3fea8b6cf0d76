// Opening and integrity: the state directory, its lock, the file header, quick_check,
// application_id, the instance id, backups and migrations.
#include "state/schema.hpp"
#include "state/store_detail.hpp"

#include <fmt/core.h>
#include <sqlite3.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace state {

using namespace detail;

namespace {

// Only our own process uses the database (the flock), so a lock is held at most by a
// reader such as the sqlite3 shell: wait briefly, then report it rather than hang.
constexpr int k_busy_timeout_ms = 250;

// The 16 bytes every SQLite 3 database file starts with.
constexpr std::string_view k_sqlite_magic{ "SQLite format 3\0", 16 };

std::string
user_name(uid_t uid)
{
  std::array<char, 4096> buf{};
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return fmt::format("'{}' (uid {})", found->pw_name, uid);
  }
  return fmt::format("uid {}", uid);
}

// DESIGN §3: a root `once` in a daemon user's state_dir would leave root-owned WAL files
// that the daemon then cannot open, so refuse and say whom to run as.
util::Result<void>
check_owned(const std::string& path, const struct stat& st)
{
  const uid_t euid = ::geteuid();
  if (st.st_uid == euid) {
    return {};
  }
  return util::make_error(
    "permission",
    fmt::format("{} is owned by user {}, but this process runs as user {}: run "
                "jenkins-token-rotator as {} (e.g. with runuser -u or sudo -u) so that the "
                "state files keep one owner",
                path, user_name(st.st_uid), user_name(euid), user_name(st.st_uid)));
}

util::Result<void>
prepare_dir(const std::string& dir)
{
  struct stat st
  {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return util::make_error("io", fmt::format("{}: {}", dir, std::strerror(errno)));
    }
    if (::mkdir(dir.c_str(), 0700) != 0 || ::stat(dir.c_str(), &st) != 0) {
      return util::make_error("io",
                              fmt::format("{}: cannot be created: {}", dir, std::strerror(errno)));
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return util::make_error("io", fmt::format("{}: state_dir is not a directory", dir));
  }
  STATE_TRY(check_owned(dir, st));
  for (const char* name : { "lock", "state.db", "state.db-wal", "state.db-shm" }) {
    const auto path = fmt::format("{}/{}", dir, name);
    struct stat fst
    {};
    if (::lstat(path.c_str(), &fst) == 0) {
      STATE_TRY(check_owned(path, fst));
    }
  }
  return {};
}

util::Error
corrupt(const std::string& path, std::string_view what)
{
  return util::make_error(
    "corrupt", fmt::format("{}: {}; the file was left as it is: restore it from a backup "
                           "(state.db.bak-v*) or move it away to start afresh",
                           path, what));
}

// Rejects a non-empty file that does not start like an SQLite database before SQLite
// touches it (setting journal_mode=WAL would write into its header).
util::Result<void>
check_header(const std::string& path)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return util::make_error("io",
                            fmt::format("{}: cannot be read: {}", path, std::strerror(errno)));
  }
  std::array<char, 100> header{};
  const ssize_t n = ::pread(fd, header.data(), header.size(), 0);
  ::close(fd);
  if (n == 0) {
    return {}; // an empty file is an empty database: SQLite creates the schema in it
  }
  if (n < static_cast<ssize_t>(header.size()) ||
      std::string_view(header.data(), k_sqlite_magic.size()) != k_sqlite_magic) {
    return corrupt(path, "not an SQLite database");
  }
  return {};
}

// SQLite's part of an error message, without the "PATH: " our messages start with.
std::string
without_path(const std::string& path, const std::string& message)
{
  const auto prefix = path + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

util::Result<void>
quick_check(Database& db)
{
  auto st = db.prepare("PRAGMA quick_check(3)");
  if (!st) {
    return corrupt(db.path(),
                   fmt::format("damaged ({})", without_path(db.path(), st.error().message)));
  }
  std::vector<std::string> problems;
  for (;;) {
    auto row = st->step();
    if (!row) {
      return corrupt(db.path(),
                     fmt::format("damaged ({})", without_path(db.path(), row.error().message)));
    }
    if (!*row) {
      break;
    }
    auto line = st->text(0);
    if (line != "ok") {
      problems.push_back(std::move(line));
    }
  }
  if (!problems.empty()) {
    return corrupt(db.path(), fmt::format("damaged: {}", problems.front()));
  }
  return {};
}

util::Result<void>
fsync_path(const std::string& path, int flags)
{
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) {
      ::close(fd);
    }
    return util::make_error("io",
                            fmt::format("{}: cannot be synced: {}", path, std::strerror(err)));
  }
  ::close(fd);
  return {};
}

// Copies the database to state.db.bak-v<version> (never over an earlier copy) and makes
// the copy durable before anything is migrated.
util::Result<std::string>
backup(Database& db, const std::string& dir, int version)
{
  auto target = fmt::format("{}.bak-v{}", db.path(), version);
  for (int n = 2; ::access(target.c_str(), F_OK) == 0; ++n) {
    target = fmt::format("{}.bak-v{}.{}", db.path(), version, n);
  }
  auto st = db.prepare("VACUUM INTO ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(target);
  if (auto r = st->run(); !r) {
    return util::make_error(
      "io", fmt::format("{}: the copy before migrating failed, nothing was migrated: {}", target,
                        r.error().message));
  }
  STATE_TRY(fsync_path(target, O_RDONLY));
  STATE_TRY(fsync_path(dir, O_RDONLY | O_DIRECTORY));
  return target;
}

// `n` random bytes from the kernel, as lowercase hex.
util::Result<std::string>
random_hex(std::size_t n)
{
  std::array<unsigned char, 32> bytes{};
  if (n > bytes.size()) {
    return util::make_error("io", "random_hex: too many bytes");
  }
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::getrandom(bytes.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return util::make_error("io", fmt::format("getrandom: {}", std::strerror(errno)));
    }
    got += static_cast<std::size_t>(r);
  }
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += fmt::format("{:02x}", bytes[i]);
  }
  ::explicit_bzero(bytes.data(), bytes.size());
  return out;
}

util::Result<std::string>
make_instance_id()
{
  return random_hex(4);
}

bool
is_instance_id(std::string_view id)
{
  return id.size() == 8 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

bool
is_name_key(std::string_view key)
{
  return key.size() == 64 && key.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

} // namespace

// --- Opening ----------------------------------------------------------------------------

Store::Store(DirLock lock, std::unique_ptr<Database> db, std::string instance_id,
             std::string name_key, EnvelopeCheck check_envelope)
  : m_lock(std::move(lock))
  , m_db(std::move(db))
  , m_path(m_db->path())
  , m_instance_id(std::move(instance_id))
  , m_name_key(std::move(name_key))
  , m_check_envelope(std::move(check_envelope))
{
}

Store::~Store()
{
  ::explicit_bzero(m_name_key.data(), m_name_key.size());
}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

util::Result<Store>
Store::open(const std::string& state_dir, EnvelopeCheck check_envelope)
{
  STATE_TRY(prepare_dir(state_dir));
  auto lock = DirLock::acquire(state_dir + "/lock");
  if (!lock) {
    return lock.error();
  }
  const auto path = state_dir + "/state.db";
  struct stat st
  {};
  const bool exists = ::lstat(path.c_str(), &st) == 0;
  if (exists) {
    if (!S_ISREG(st.st_mode)) {
      return corrupt(path, "not a regular file");
    }
    STATE_TRY(check_header(path));
  }

  auto db = std::make_unique<Database>(path);
  STATE_TRY(db->open(!exists));
  sqlite3_busy_timeout(db->handle(), k_busy_timeout_ms);
  if (exists) {
    STATE_TRY(quick_check(*db));
  }
  const auto version = query_int(*db, "PRAGMA user_version");
  const auto app_id = query_int(*db, "PRAGMA application_id");
  const auto tables = query_int(*db, "SELECT count(*) FROM sqlite_schema");
  if (!version || !app_id || !tables) {
    return corrupt(path, "cannot read the schema version");
  }
  if (*version > schema::k_version) {
    return util::make_error(
      "schema",
      fmt::format("{}: schema version {} is newer than this jenkins-token-rotator "
                  "understands (up to {}): run the newer version that wrote it; the file was "
                  "left as it is",
                  path, *version, schema::k_version));
  }
  if ((*version > 0 && *app_id != schema::k_application_id) || (*version == 0 && *tables > 0)) {
    return corrupt(path, "an SQLite database, but not a jenkins-token-rotator state database");
  }

  STATE_TRY(db->exec("PRAGMA foreign_keys = ON"));
  {
    auto mode = db->prepare("PRAGMA journal_mode = WAL");
    if (!mode) {
      return mode.error();
    }
    auto row = mode->step();
    if (!row) {
      return row.error();
    }
    if (!*row || mode->text(0) != "wal") {
      return util::make_error("db", fmt::format("{}: cannot switch to WAL mode", path));
    }
  }
  STATE_TRY(db->exec("PRAGMA synchronous = FULL"));

  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  if (*version < schema::k_version) {
    std::string copy;
    if (*version > 0) {
      auto saved = backup(*db, state_dir, static_cast<int>(*version));
      if (!saved) {
        return saved.error();
      }
      copy = *saved;
    }
    auto tx = Transaction::begin(*db);
    if (!tx) {
      return tx.error();
    }
    STATE_TRY(schema::migrate(*db, static_cast<int>(*version)));
    if (*version == 0) {
      auto id = make_instance_id();
      if (!id) {
        return id.error();
      }
      auto ins = db->prepare("INSERT INTO instance (id, instance_id, created) VALUES (1, ?1, ?2)");
      if (!ins) {
        return ins.error();
      }
      ins->bind_all(*id, now);
      STATE_TRY(ins->run());
      STATE_TRY(
        insert_audit(*db, now, std::nullopt, std::nullopt, "created",
                     fmt::format("instance {}, schema version {}", *id, schema::k_version)));
    } else {
      STATE_TRY(insert_audit(*db, now, std::nullopt, std::nullopt, "migrated",
                             fmt::format("schema version {} -> {}, copy kept at {}", *version,
                                         schema::k_version, copy)));
    }
    if (*version < 3) {
      // The token name key (schema v3), made once: never logged, never audited.
      auto key = random_hex(32);
      if (!key) {
        return key.error();
      }
      auto set = db->prepare("UPDATE instance SET name_key = ?1 WHERE id = 1 AND name_key IS NULL");
      if (!set) {
        return set.error();
      }
      set->bind_all(*key);
      const auto ran = set->run();
      ::explicit_bzero(key->data(), key->size());
      STATE_TRY(ran);
    }
    STATE_TRY(tx->commit());
  }

  std::string instance_id;
  std::string name_key;
  {
    auto sel = db->prepare("SELECT instance_id, name_key FROM instance WHERE id = 1");
    if (!sel) {
      return sel.error();
    }
    auto row = sel->step();
    if (!row) {
      return row.error();
    }
    if (*row) {
      instance_id = sel->text(0);
      name_key = sel->optional_text(1).value_or(std::string());
    }
  }
  if (!is_instance_id(instance_id)) {
    return corrupt(path, "no valid instance id");
  }
  if (!is_name_key(name_key)) {
    ::explicit_bzero(name_key.data(), name_key.size());
    return corrupt(path, "no valid token name key");
  }
  return Store(std::move(*lock), std::move(db), std::move(instance_id), std::move(name_key),
               std::move(check_envelope));
}

util::Result<Transaction>
Store::begin()
{
  return Transaction::begin(*m_db);
}

} // namespace state
