#include "state/store.hpp"

#include "state/database.hpp"
#include "state/schema.hpp"

#include <date/date.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

// Propagates the error of an expression returning util::Result<...>.
#define STATE_TRY(expr)                                                                            \
  do {                                                                                             \
    if (auto state_try_r = (expr); !state_try_r) {                                                 \
      return state_try_r.error();                                                                  \
    }                                                                                              \
  } while (false)

namespace state {

namespace {

// Only our own process uses the database (the flock), so a lock is held at most by a
// reader such as the sqlite3 shell: wait briefly, then report it rather than hang.
constexpr int k_busy_timeout_ms = 250;

// The 16 bytes every SQLite 3 database file starts with.
constexpr std::string_view k_sqlite_magic{ "SQLite format 3\0", 16 };

// SELECT prefixes shared by the queries that return whole records; the current token is
// joined rather than stored twice.
#define SLOT_SELECT                                                                                \
  "SELECT s.id, s.controller, s.user_key, s.user_display, t.uuid, s.last_rotation, "               \
  "s.next_due, s.backoff_until, s.consecutive_failures, s.degraded, s.last_error "                 \
  "FROM slots s LEFT JOIN tokens t ON t.slot_id = s.id AND t.role = 'current' "
#define ATTEMPT_SELECT                                                                             \
  "SELECT a.seq, a.slot_id, a.state, a.token_name, t.uuid, a.error, a.created, a.updated "         \
  "FROM attempts a LEFT JOIN tokens t ON t.seq = a.seq "
#define TOKEN_SELECT                                                                               \
  "SELECT t.uuid, a.token_name, t.seq, t.slot_id, s.controller, s.user_display, t.created, "       \
  "t.expires, t.jenkins_expires, t.role, t.retire_at, t.revoked_at "                               \
  "FROM tokens t JOIN attempts a ON a.seq = t.seq JOIN slots s ON s.id = t.slot_id "

Slot
read_slot(const Statement& st)
{
  Slot s;
  s.id = st.int64(0);
  s.controller = st.text(1);
  s.user_key = st.text(2);
  s.user_display = st.text(3);
  s.current_uuid = st.optional_text(4);
  s.last_rotation = st.optional_time(5);
  s.next_due = st.optional_time(6);
  s.backoff_until = st.optional_time(7);
  s.consecutive_failures = static_cast<int>(st.int64(8));
  s.degraded = st.int64(9) != 0;
  s.last_error = st.optional_text(10);
  return s;
}

Attempt
read_attempt(const Statement& st)
{
  Attempt a;
  a.seq = st.int64(0);
  a.slot = st.int64(1);
  // The CHECK constraint admits only known names.
  a.state = parse_attempt_state(st.text(2)).value_or(AttemptState::failed);
  a.token_name = st.text(3);
  a.token_uuid = st.optional_text(4);
  a.error = st.optional_text(5);
  a.created = st.time(6);
  a.updated = st.time(7);
  return a;
}

Token
read_token(const Statement& st)
{
  Token t;
  t.uuid = st.text(0);
  t.name = st.text(1);
  t.seq = st.int64(2);
  t.slot = st.int64(3);
  t.controller = st.text(4);
  t.user_display = st.text(5);
  t.created = st.time(6);
  t.expires = st.time(7);
  t.jenkins_expires = st.optional_time(8);
  t.role = parse_token_role(st.text(9)).value_or(TokenRole::revoked);
  t.retire_at = st.optional_time(10);
  t.revoked_at = st.optional_time(11);
  return t;
}

// Reads every row of a bound statement with `read`.
template<typename T, typename Read>
util::Result<std::vector<T>>
read_all(Statement& st, Read read)
{
  std::vector<T> rows;
  for (;;) {
    auto row = st.step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return rows;
    }
    rows.push_back(read(st));
  }
}

template<typename T, typename Read>
util::Result<std::optional<T>>
read_one(Statement& st, Read read)
{
  auto row = st.step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return std::optional<T>();
  }
  return std::optional<T>(read(st));
}

std::string
format_time(Time t)
{
  return date::format("%FT%TZ", t);
}

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

util::Result<std::int64_t>
query_int(Database& db, const char* sql)
{
  auto st = db.prepare(sql);
  if (!st) {
    return st.error();
  }
  auto row = st->step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return util::make_error("db", fmt::format("{}: no answer to {}", db.path(), sql));
  }
  return st->int64(0);
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

util::Result<std::string>
make_instance_id()
{
  std::array<unsigned char, 4> bytes{};
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return util::make_error("io", fmt::format("getrandom: {}", std::strerror(errno)));
    }
    got += static_cast<std::size_t>(n);
  }
  return fmt::format("{:02x}{:02x}{:02x}{:02x}", bytes[0], bytes[1], bytes[2], bytes[3]);
}

bool
is_instance_id(std::string_view id)
{
  return id.size() == 8 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// Runs `body` atomically: inside a savepoint, which nests in the caller's transaction or,
// without one, is a transaction of its own.
template<typename F>
auto
atomically(Database& db, F&& body) -> decltype(body())
{
  if (auto r = db.exec("SAVEPOINT jtr_call"); !r) {
    return r.error();
  }
  auto result = body();
  if (!result) {
    (void)db.exec("ROLLBACK TO jtr_call; RELEASE jtr_call");
    return result;
  }
  if (auto r = db.exec("RELEASE jtr_call"); !r) {
    (void)db.exec("ROLLBACK TO jtr_call; RELEASE jtr_call");
    return r.error();
  }
  return result;
}

util::Result<void>
insert_audit(Database& db, Time time, std::optional<SlotId> slot, std::optional<Seq> seq,
             std::string_view event, std::string_view detail)
{
  auto st =
    db.prepare("INSERT INTO audit (time, slot_id, seq, event, detail) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!st) {
    return st.error();
  }
  st->bind_all(time, slot, seq, event, detail);
  return st->run();
}

// Runs a bound UPDATE that must change exactly one row; otherwise `missing` is the error.
util::Result<void>
update_one(Database& db, Statement& st, const std::function<util::Error()>& missing)
{
  STATE_TRY(st.run());
  if (db.changes() != 1) {
    return missing();
  }
  return {};
}

// DESIGN §6 keys. Anything else is refused, so a field holding a plain token cannot slip
// into the database through an envelope.
constexpr std::array<std::string_view, 10> k_envelope_keys{
  "format",  "controller",      "url",   "user", "token_name", "token_uuid", "created",
  "expires", "jenkins_expires", "sealed"
};
constexpr std::array<std::string_view, 4> k_sealed_keys{ "recipient", "key_id", "alg",
                                                         "ciphertext" };

template<std::size_t N>
bool
only_keys(const nlohmann::json& object, const std::array<std::string_view, N>& allowed)
{
  for (const auto& item : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      return false;
    }
  }
  return true;
}

// Checks that `env` is a sealed DESIGN §6 envelope of this token. Messages never quote the
// envelope: whatever it holds stays out of logs.
util::Result<void>
check_envelope(const Envelope& env, const Attempt& attempt, const MintedToken& token)
{
  const auto where = fmt::format("attempt {} ({}): envelope for sink {}", attempt.seq,
                                 attempt.token_name, env.sink_index);
  const auto bad = [&](std::string_view what) {
    return util::make_error("envelope", fmt::format("{}: {}", where, what));
  };
  if (env.sink_index < 0) {
    return bad("negative sink index");
  }
  if (env.sink_hash.empty()) {
    return bad("no sink config hash");
  }
  const auto json = nlohmann::json::parse(env.json, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return bad("expected a JSON object");
  }
  if (!only_keys(json, k_envelope_keys)) {
    return bad("unexpected key (only the keys of DESIGN §6 are stored)");
  }
  if (json.value("format", "") != "jenkins-token-rotator/v1") {
    return bad("expected format jenkins-token-rotator/v1");
  }
  if (json.value("token_uuid", "") != token.uuid ||
      json.value("token_name", "") != attempt.token_name) {
    return bad("token_uuid or token_name does not match the attempt");
  }
  const auto sealed = json.find("sealed");
  if (sealed == json.end() || !sealed->is_array() || sealed->empty()) {
    return bad("expected a non-empty `sealed` list");
  }
  for (const auto& entry : *sealed) {
    if (!entry.is_object() || !only_keys(entry, k_sealed_keys) || !entry.contains("ciphertext") ||
        !entry["ciphertext"].is_string() ||
        entry["ciphertext"].get_ref<const std::string&>().empty()) {
      return bad("each `sealed` entry needs a ciphertext and only the keys of DESIGN §6");
    }
  }
  return {};
}

} // namespace

// --- Opening ----------------------------------------------------------------------------

Store::Store(DirLock lock, std::unique_ptr<Database> db, std::string instance_id)
  : m_lock(std::move(lock))
  , m_db(std::move(db))
  , m_path(m_db->path())
  , m_instance_id(std::move(instance_id))
{
}

Store::~Store() = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

util::Result<Store>
Store::open(const std::string& state_dir)
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
    STATE_TRY(tx->commit());
  }

  std::string instance_id;
  {
    auto sel = db->prepare("SELECT instance_id FROM instance WHERE id = 1");
    if (!sel) {
      return sel.error();
    }
    auto row = sel->step();
    if (!row) {
      return row.error();
    }
    if (*row) {
      instance_id = sel->text(0);
    }
  }
  if (!is_instance_id(instance_id)) {
    return corrupt(path, "no valid instance id");
  }
  return Store(std::move(*lock), std::move(db), std::move(instance_id));
}

util::Result<Transaction>
Store::begin()
{
  return Transaction::begin(*m_db);
}

// --- Sequence ---------------------------------------------------------------------------

util::Result<Seq>
Store::next_seq()
{
  return atomically(*m_db, [&]() -> util::Result<Seq> {
    return query_int(*m_db,
                     "UPDATE instance SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq");
  });
}

util::Result<Seq>
Store::highest_seq()
{
  return query_int(*m_db, "SELECT last_seq FROM instance WHERE id = 1");
}

// --- Slots ------------------------------------------------------------------------------

util::Result<SlotId>
Store::ensure_slot(std::string_view controller, std::string_view user_key,
                   std::string_view user_display)
{
  return atomically(*m_db, [&]() -> util::Result<SlotId> {
    auto st = m_db->prepare(
      "INSERT INTO slots (controller, user_key, user_display) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (controller, user_key) DO UPDATE SET user_display = excluded.user_display "
      "RETURNING id");
    if (!st) {
      return st.error();
    }
    st->bind_all(controller, user_key, user_display);
    auto row = st->step();
    if (!row) {
      return row.error();
    }
    return st->int64(0);
  });
}

util::Result<Slot>
Store::slot(SlotId id)
{
  auto st = m_db->prepare(SLOT_SELECT "WHERE s.id = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(id);
  auto found = read_one<Slot>(*st, read_slot);
  if (!found) {
    return found.error();
  }
  if (!*found) {
    return util::make_error("not_found", fmt::format("{}: no slot with id {}", m_path, id));
  }
  return std::move(**found);
}

util::Result<std::optional<Slot>>
Store::find_slot(std::string_view controller, std::string_view user_key)
{
  auto st = m_db->prepare(SLOT_SELECT "WHERE s.controller = ?1 AND s.user_key = ?2");
  if (!st) {
    return st.error();
  }
  st->bind_all(controller, user_key);
  return read_one<Slot>(*st, read_slot);
}

util::Result<std::vector<Slot>>
Store::slots()
{
  auto st = m_db->prepare(SLOT_SELECT "ORDER BY s.id");
  if (!st) {
    return st.error();
  }
  return read_all<Slot>(*st, read_slot);
}

util::Result<std::vector<Slot>>
Store::degraded_slots()
{
  auto st = m_db->prepare(SLOT_SELECT "WHERE s.degraded = 1 ORDER BY s.id");
  if (!st) {
    return st.error();
  }
  return read_all<Slot>(*st, read_slot);
}

util::Result<void>
Store::set_backoff(SlotId id, std::optional<Time> until)
{
  auto st = m_db->prepare("UPDATE slots SET backoff_until = ?2 WHERE id = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(id, until);
  return update_one(*m_db, *st, [&] {
    return util::make_error("not_found", fmt::format("{}: no slot with id {}", m_path, id));
  });
}

util::Result<void>
Store::set_next_due(SlotId id, std::optional<Time> when)
{
  auto st = m_db->prepare("UPDATE slots SET next_due = ?2 WHERE id = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(id, when);
  return update_one(*m_db, *st, [&] {
    return util::make_error("not_found", fmt::format("{}: no slot with id {}", m_path, id));
  });
}

util::Result<void>
Store::set_degraded(SlotId id, bool degraded, std::string_view reason, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto current = slot(id);
    if (!current) {
      return current.error();
    }
    if (current->degraded == degraded) {
      return {};
    }
    auto st = m_db->prepare(
      "UPDATE slots SET degraded = ?2, last_error = CASE WHEN ?2 THEN ?3 ELSE last_error END "
      "WHERE id = ?1");
    if (!st) {
      return st.error();
    }
    st->bind_all(id, degraded ? 1 : 0, reason);
    STATE_TRY(st->run());
    return insert_audit(*m_db, now, id, std::nullopt, degraded ? "degraded" : "recovered", reason);
  });
}

// --- Attempts ---------------------------------------------------------------------------

util::Result<Attempt>
Store::expect_state(Seq seq, std::initializer_list<AttemptState> allowed, std::string_view action)
{
  auto found = attempt(seq);
  if (!found) {
    return found.error();
  }
  if (!*found) {
    return util::make_error("not_found", fmt::format("{}: no attempt {}", m_path, seq));
  }
  for (const auto s : allowed) {
    if ((*found)->state == s) {
      return std::move(**found);
    }
  }
  std::string expected;
  for (const auto s : allowed) {
    expected += expected.empty() ? "" : " or ";
    expected += to_string(s);
  }
  return util::make_error("state", fmt::format("attempt {} ({}) is {}: cannot {} (expected {})",
                                               seq, (*found)->token_name,
                                               to_string((*found)->state), action, expected));
}

util::Result<void>
Store::set_attempt_state(const Attempt& a, AttemptState state,
                         std::optional<std::string_view> error, Time now)
{
  auto st = m_db->prepare(
    "UPDATE attempts SET state = ?2, error = coalesce(?3, error), updated = ?4 WHERE seq = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(a.seq, to_string(state), error, now);
  STATE_TRY(st->run());
  auto detail = std::string(a.token_name);
  if (error) {
    detail += ": ";
    detail += *error;
  }
  return insert_audit(*m_db, now, a.slot, a.seq, to_string(state), detail);
}

util::Result<void>
Store::create_attempt(Seq seq, SlotId slot, std::string_view token_name, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto highest = highest_seq();
    if (!highest) {
      return highest.error();
    }
    if (seq <= 0 || seq > *highest) {
      return util::make_error(
        "state", fmt::format("{}: seq {} was not handed out by next_seq (highest is {})", m_path,
                             seq, *highest));
    }
    auto st = m_db->prepare("INSERT INTO attempts (seq, slot_id, state, token_name, created, "
                            "updated) VALUES (?1, ?2, 'planned', ?3, ?4, ?4)");
    if (!st) {
      return st.error();
    }
    st->bind_all(seq, slot, token_name, now);
    STATE_TRY(st->run());
    return insert_audit(*m_db, now, slot, seq, "planned", token_name);
  });
}

util::Result<void>
Store::mark_minted(Seq seq, const MintedToken& token, std::span<const Envelope> envelopes, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto a = expect_state(seq, { AttemptState::planned }, "record its mint");
    if (!a) {
      return a.error();
    }
    if (envelopes.empty()) {
      return util::make_error(
        "envelope", fmt::format("attempt {} ({}): no sealed envelope", seq, a->token_name));
    }
    for (const auto& env : envelopes) {
      STATE_TRY(check_envelope(env, *a, token));
    }
    auto ins = m_db->prepare(
      "INSERT INTO tokens (uuid, seq, slot_id, created, expires, jenkins_expires, role) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')");
    if (!ins) {
      return ins.error();
    }
    ins->bind_all(token.uuid, seq, a->slot, token.created, token.expires, token.jenkins_expires);
    STATE_TRY(ins->run());
    for (const auto& env : envelopes) {
      auto st = m_db->prepare(
        "INSERT INTO envelopes (seq, sink_index, sink_hash, envelope) VALUES (?1, ?2, ?3, ?4)");
      if (!st) {
        return st.error();
      }
      st->bind_all(seq, env.sink_index, env.sink_hash, env.json);
      STATE_TRY(st->run());
    }
    return set_attempt_state(*a, AttemptState::minted,
                             fmt::format("uuid {}, {} sinks", token.uuid, envelopes.size()), now);
  });
}

util::Result<void>
Store::mark_verified(Seq seq, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto a = expect_state(seq, { AttemptState::minted }, "mark it verified");
    if (!a) {
      return a.error();
    }
    return set_attempt_state(*a, AttemptState::verified, std::nullopt, now);
  });
}

util::Result<void>
Store::record_sink_result(Seq seq, int sink_index, SinkOutcome outcome, std::string_view message,
                          Time now, int tries)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto a =
      expect_state(seq, { AttemptState::verified, AttemptState::delivering }, "record a delivery");
    if (!a) {
      return a.error();
    }
    auto has = m_db->prepare("SELECT 1 FROM envelopes WHERE seq = ?1 AND sink_index = ?2");
    if (!has) {
      return has.error();
    }
    has->bind_all(seq, sink_index);
    auto row = has->step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return util::make_error("not_found", fmt::format("attempt {} ({}): no envelope for sink {}",
                                                       seq, a->token_name, sink_index));
    }
    auto st =
      m_db->prepare("INSERT INTO sink_results (seq, sink_index, outcome, message, tries, updated) "
                    "VALUES (?1, ?2, ?3, ?4, ?6, ?5) ON CONFLICT (seq, sink_index) DO UPDATE SET "
                    "outcome = excluded.outcome, message = excluded.message, "
                    "tries = tries + excluded.tries, updated = excluded.updated");
    if (!st) {
      return st.error();
    }
    st->bind_all(seq, sink_index, to_string(outcome), message, now, std::max(tries, 1));
    STATE_TRY(st->run());
    STATE_TRY(insert_audit(*m_db, now, a->slot, seq, fmt::format("sink_{}", to_string(outcome)),
                           fmt::format("{}: sink {}{}{}", a->token_name, sink_index,
                                       message.empty() ? "" : ": ", message)));
    if (outcome == SinkOutcome::ok && a->state == AttemptState::verified) {
      return set_attempt_state(*a, AttemptState::delivering, std::nullopt, now);
    }
    return {};
  });
}

util::Result<CommitOutcome>
Store::commit_attempt(Seq seq, Time now, std::chrono::seconds grace)
{
  return atomically(*m_db, [&]() -> util::Result<CommitOutcome> {
    auto a = expect_state(seq, { AttemptState::delivering }, "commit it");
    if (!a) {
      return a.error();
    }
    auto count =
      m_db->prepare("SELECT (SELECT count(*) FROM envelopes WHERE seq = ?1), "
                    "(SELECT count(*) FROM sink_results WHERE seq = ?1 AND outcome = 'ok')");
    if (!count) {
      return count.error();
    }
    count->bind_all(seq);
    STATE_TRY(count->step());
    const auto sinks = count->int64(0);
    const auto written = count->int64(1);
    if (written != sinks) {
      return util::make_error("state",
                              fmt::format("attempt {} ({}): {} of {} sinks written: cannot commit",
                                          seq, a->token_name, written, sinks));
    }

    CommitOutcome outcome;
    const Time retire_at = now + grace;
    {
      auto cur = m_db->prepare("SELECT uuid FROM tokens WHERE slot_id = ?1 AND role = 'current'");
      if (!cur) {
        return cur.error();
      }
      cur->bind_all(a->slot);
      auto row = cur->step();
      if (!row) {
        return row.error();
      }
      if (*row) {
        outcome.previous_uuid = cur->text(0);
        outcome.retire_at = retire_at;
      }
    }
    // The old current steps down first: the unique index allows one current per slot.
    auto demote = m_db->prepare("UPDATE tokens SET role = 'previous', retire_at = ?2 "
                                "WHERE slot_id = ?1 AND role = 'current'");
    if (!demote) {
      return demote.error();
    }
    demote->bind_all(a->slot, retire_at);
    STATE_TRY(demote->run());
    auto promote =
      m_db->prepare("UPDATE tokens SET role = 'current' WHERE seq = ?1 AND role = 'pending'");
    if (!promote) {
      return promote.error();
    }
    promote->bind_all(seq);
    STATE_TRY(update_one(*m_db, *promote, [&] {
      return util::make_error("state", fmt::format("attempt {} ({}): its token is no longer "
                                                   "pending (revoked?): cannot commit",
                                                   seq, a->token_name));
    }));

    // Older attempts of the slot still open with a token are superseded. A sink may hold
    // their token, so it retires after grace like a previous one (DESIGN §1.1). Planned
    // ones stay open: they may be lost mints the engine must look for by name.
    auto older =
      m_db->prepare(ATTEMPT_SELECT "WHERE a.slot_id = ?1 AND a.seq < ?2 AND t.uuid IS NOT NULL "
                                   "AND a.state IN ('minted', 'verified', 'delivering') "
                                   "ORDER BY a.seq");
    if (!older) {
      return older.error();
    }
    older->bind_all(a->slot, seq);
    auto superseded = read_all<Attempt>(*older, read_attempt);
    if (!superseded) {
      return superseded.error();
    }
    for (const auto& old : *superseded) {
      auto retire = m_db->prepare("UPDATE tokens SET role = 'previous', retire_at = ?2 "
                                  "WHERE seq = ?1 AND role = 'pending'");
      if (!retire) {
        return retire.error();
      }
      retire->bind_all(old.seq, retire_at);
      STATE_TRY(retire->run());
      STATE_TRY(set_attempt_state(old, AttemptState::abandoned,
                                  fmt::format("superseded by attempt {}", seq), now));
    }

    auto slot_st =
      m_db->prepare("UPDATE slots SET last_rotation = ?2, next_due = NULL, backoff_until = NULL, "
                    "consecutive_failures = 0, degraded = 0, last_error = NULL WHERE id = ?1");
    if (!slot_st) {
      return slot_st.error();
    }
    slot_st->bind_all(a->slot, now);
    STATE_TRY(slot_st->run());
    const auto detail =
      outcome.previous_uuid
        ? fmt::format("previous {} retires at {}", *outcome.previous_uuid, format_time(retire_at))
        : std::string("first token of the slot");
    STATE_TRY(set_attempt_state(*a, AttemptState::committed, detail, now));
    return outcome;
  });
}

util::Result<void>
Store::fail_attempt(Seq seq, std::string_view error, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    // Not from delivering: once a sink holds the token we roll forward (DESIGN §2.2).
    auto a = expect_state(
      seq, { AttemptState::planned, AttemptState::minted, AttemptState::verified }, "fail it");
    if (!a) {
      return a.error();
    }
    auto st = m_db->prepare("UPDATE slots SET consecutive_failures = consecutive_failures + 1, "
                            "last_error = ?2 WHERE id = ?1");
    if (!st) {
      return st.error();
    }
    st->bind_all(a->slot, error);
    STATE_TRY(st->run());
    return set_attempt_state(*a, AttemptState::failed, error, now);
  });
}

util::Result<void>
Store::abandon_attempt(Seq seq, std::string_view outcome, Time now)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto a = expect_state(seq, { AttemptState::planned }, "abandon it");
    if (!a) {
      return a.error();
    }
    return set_attempt_state(*a, AttemptState::abandoned, outcome, now);
  });
}

util::Result<std::optional<Attempt>>
Store::attempt(Seq seq)
{
  auto st = m_db->prepare(ATTEMPT_SELECT "WHERE a.seq = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_one<Attempt>(*st, read_attempt);
}

util::Result<std::vector<Attempt>>
Store::attempts_in_state(AttemptState state)
{
  auto st = m_db->prepare(ATTEMPT_SELECT "WHERE a.state = ?1 ORDER BY a.seq");
  if (!st) {
    return st.error();
  }
  st->bind_all(to_string(state));
  return read_all<Attempt>(*st, read_attempt);
}

util::Result<std::vector<Attempt>>
Store::open_attempts()
{
  auto st =
    m_db->prepare(ATTEMPT_SELECT "WHERE a.state IN ('planned', 'minted', 'verified', 'delivering') "
                                 "ORDER BY a.seq");
  if (!st) {
    return st.error();
  }
  return read_all<Attempt>(*st, read_attempt);
}

util::Result<std::vector<Attempt>>
Store::attempts_of_slot(SlotId slot, int limit)
{
  auto st = m_db->prepare(ATTEMPT_SELECT "WHERE a.slot_id = ?1 ORDER BY a.seq DESC LIMIT ?2");
  if (!st) {
    return st.error();
  }
  st->bind_all(slot, limit);
  return read_all<Attempt>(*st, read_attempt);
}

util::Result<std::vector<Envelope>>
Store::envelopes(Seq seq)
{
  auto st = m_db->prepare("SELECT sink_index, sink_hash, envelope FROM envelopes WHERE seq = ?1 "
                          "ORDER BY sink_index");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_all<Envelope>(*st, [](const Statement& s) {
    return Envelope{ static_cast<int>(s.int64(0)), s.text(1), s.text(2) };
  });
}

util::Result<std::vector<SinkResult>>
Store::sink_results(Seq seq)
{
  auto st = m_db->prepare("SELECT sink_index, outcome, message, tries, updated FROM sink_results "
                          "WHERE seq = ?1 ORDER BY sink_index");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_all<SinkResult>(*st, [](const Statement& s) {
    return SinkResult{ static_cast<int>(s.int64(0)),
                       parse_sink_outcome(s.text(1)).value_or(SinkOutcome::retryable), s.text(2),
                       static_cast<int>(s.int64(3)), s.time(4) };
  });
}

// --- Tokens -----------------------------------------------------------------------------

util::Result<std::optional<Token>>
Store::token(std::string_view uuid)
{
  auto st = m_db->prepare(TOKEN_SELECT "WHERE t.uuid = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(uuid);
  return read_one<Token>(*st, read_token);
}

util::Result<std::optional<Token>>
Store::token_by_seq(Seq seq)
{
  auto st = m_db->prepare(TOKEN_SELECT "WHERE t.seq = ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(seq);
  return read_one<Token>(*st, read_token);
}

util::Result<std::vector<Token>>
Store::live_tokens(SlotId slot)
{
  auto st =
    m_db->prepare(TOKEN_SELECT "WHERE t.slot_id = ?1 AND t.role != 'revoked' ORDER BY t.seq DESC");
  if (!st) {
    return st.error();
  }
  st->bind_all(slot);
  return read_all<Token>(*st, read_token);
}

util::Result<std::vector<Token>>
Store::current_tokens()
{
  auto st = m_db->prepare(TOKEN_SELECT "WHERE t.role = 'current' ORDER BY t.slot_id");
  if (!st) {
    return st.error();
  }
  return read_all<Token>(*st, read_token);
}

util::Result<std::vector<PruneCandidate>>
Store::tokens_to_prune(Time now)
{
  auto st = m_db->prepare(TOKEN_SELECT
                          "WHERE t.role IN ('previous', 'pending') "
                          "AND a.state NOT IN ('planned', 'minted', 'verified', 'delivering') "
                          "AND ((t.role = 'previous' AND t.retire_at <= ?1) OR t.expires <= ?1 "
                          "     OR (t.role = 'pending' AND a.state = 'failed')) "
                          "ORDER BY t.seq");
  if (!st) {
    return st.error();
  }
  st->bind_all(now);
  return read_all<PruneCandidate>(*st, [now](const Statement& s) {
    PruneCandidate c{ read_token(s), PruneReason::expired };
    if (c.token.role == TokenRole::previous && c.token.retire_at && *c.token.retire_at <= now) {
      c.reason = PruneReason::retired;
    } else if (c.token.expires <= now) {
      c.reason = PruneReason::expired;
    } else {
      c.reason = PruneReason::failed_mint;
    }
    return c;
  });
}

util::Result<void>
Store::mark_revoked(std::string_view uuid, Time when)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto t = token(uuid);
    if (!t) {
      return t.error();
    }
    if (!*t) {
      return util::make_error("not_found", fmt::format("{}: no token {} of ours", m_path, uuid));
    }
    const auto& tok = **t;
    if (tok.role == TokenRole::revoked) {
      return {};
    }
    if (tok.role == TokenRole::current) {
      return util::make_error(
        "state", fmt::format("token {} ({}) is the current token of {}/{}: not revoked", uuid,
                             tok.name, tok.controller, tok.user_display));
    }
    auto st = m_db->prepare("UPDATE tokens SET role = 'revoked', revoked_at = ?2 WHERE uuid = ?1");
    if (!st) {
      return st.error();
    }
    st->bind_all(uuid, when);
    STATE_TRY(st->run());
    return insert_audit(*m_db, when, tok.slot, tok.seq, "revoked",
                        fmt::format("{} ({}), was {}", tok.name, uuid, to_string(tok.role)));
  });
}

util::Result<void>
Store::mark_current_gone(std::string_view uuid, Time when)
{
  return atomically(*m_db, [&]() -> util::Result<void> {
    auto t = token(uuid);
    if (!t) {
      return t.error();
    }
    if (!*t || (*t)->role != TokenRole::current) {
      return util::make_error("state",
                              fmt::format("{}: token {} is not a current token", m_path, uuid));
    }
    auto st = m_db->prepare("UPDATE tokens SET role = 'revoked', revoked_at = ?2 WHERE uuid = ?1");
    if (!st) {
      return st.error();
    }
    st->bind_all(uuid, when);
    STATE_TRY(st->run());
    STATE_TRY(set_next_due((*t)->slot, when));
    return insert_audit(
      *m_db, when, (*t)->slot, (*t)->seq, "current_gone",
      fmt::format("{} ({}) vanished from Jenkins; slot due now", (*t)->name, uuid));
  });
}

// --- Audit ------------------------------------------------------------------------------

util::Result<void>
Store::append_audit(Time time, std::optional<SlotId> slot, std::optional<Seq> seq,
                    std::string_view event, std::string_view detail)
{
  return insert_audit(*m_db, time, slot, seq, event, detail);
}

util::Result<std::vector<AuditEntry>>
Store::audit(std::optional<SlotId> slot, int limit)
{
  auto st = m_db->prepare("SELECT id, time, slot_id, seq, event, detail FROM audit "
                          "WHERE ?1 IS NULL OR slot_id = ?1 ORDER BY id DESC LIMIT ?2");
  if (!st) {
    return st.error();
  }
  st->bind_all(slot, limit);
  return read_all<AuditEntry>(*st, [](const Statement& s) {
    return AuditEntry{ s.int64(0),          s.time(1), s.optional_int64(2),
                       s.optional_int64(3), s.text(4), s.text(5) };
  });
}

util::Result<std::int64_t>
Store::trim_audit(Time older_than)
{
  auto st = m_db->prepare("DELETE FROM audit WHERE time < ?1");
  if (!st) {
    return st.error();
  }
  st->bind_all(older_than);
  STATE_TRY(st->run());
  return m_db->changes();
}

} // namespace state
