#include "state/schema.hpp"
#include "state/store.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using state::Store;
using state_test::RawDb;
using state_test::read_bytes;
using state_test::TempDir;
using state_test::write_bytes;

namespace {

// The schema of version 1 as it was shipped, written by hand: a migration test must not
// use the code under test to build its input.
constexpr const char* k_v1_schema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA application_id = 1247040049; -- 0x4a545231, "JTR1"
PRAGMA user_version = 1;
CREATE TABLE instance (id INTEGER PRIMARY KEY CHECK (id = 1),
  instance_id TEXT NOT NULL CHECK (length(instance_id) = 8), created INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0));
CREATE TABLE slots (id INTEGER PRIMARY KEY, controller TEXT NOT NULL, user_key TEXT NOT NULL,
  user_display TEXT NOT NULL, last_rotation INTEGER, next_due INTEGER,
  UNIQUE (controller, user_key));
CREATE TABLE attempts (seq INTEGER PRIMARY KEY CHECK (seq > 0),
  slot_id INTEGER NOT NULL REFERENCES slots (id),
  state TEXT NOT NULL CHECK (state IN ('planned', 'minted', 'verified', 'delivering',
                                       'committed', 'failed', 'abandoned')),
  token_name TEXT NOT NULL UNIQUE, error TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE INDEX attempts_by_slot ON attempts (slot_id, seq);
CREATE TABLE tokens (uuid TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE REFERENCES attempts (seq),
  slot_id INTEGER NOT NULL REFERENCES slots (id), created INTEGER NOT NULL,
  expires INTEGER NOT NULL, jenkins_expires INTEGER,
  role TEXT NOT NULL CHECK (role IN ('pending', 'current', 'previous', 'revoked')),
  retire_at INTEGER, revoked_at INTEGER);
CREATE UNIQUE INDEX tokens_one_current ON tokens (slot_id) WHERE role = 'current';
CREATE INDEX tokens_by_role ON tokens (role);
CREATE TABLE envelopes (seq INTEGER NOT NULL REFERENCES attempts (seq),
  sink_index INTEGER NOT NULL CHECK (sink_index >= 0), sink_hash TEXT NOT NULL,
  envelope TEXT NOT NULL, PRIMARY KEY (seq, sink_index)) WITHOUT ROWID;
CREATE TABLE sink_results (seq INTEGER NOT NULL, sink_index INTEGER NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'retryable', 'rejected')),
  message TEXT NOT NULL DEFAULT '', tries INTEGER NOT NULL CHECK (tries > 0),
  updated INTEGER NOT NULL, PRIMARY KEY (seq, sink_index),
  FOREIGN KEY (seq, sink_index) REFERENCES envelopes (seq, sink_index)) WITHOUT ROWID;
CREATE TABLE audit (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,
  slot_id INTEGER REFERENCES slots (id), seq INTEGER, event TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '');
CREATE INDEX audit_by_slot ON audit (slot_id, id);
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
INSERT INTO instance (id, instance_id, created, last_seq) VALUES (1, 'abcdef01', 1700000000, 7);
INSERT INTO slots (controller, user_key, user_display, last_rotation)
  VALUES ('ci', 'svc-deploy', 'svc-Deploy', 1700000000);
INSERT INTO attempts (seq, slot_id, state, token_name, created, updated)
  VALUES (7, 1, 'planned', 'rotator-abcdef01-000007', 1700000000, 1700000000);
)sql";

void
make_v1_database(const std::string& path)
{
  RawDb raw(path);
  REQUIRE(raw.exec(k_v1_schema).empty());
}

bool
exists(const std::string& path)
{
  struct stat st
  {};
  return ::stat(path.c_str(), &st) == 0;
}

// A database with a few pages of real content, closed.
void
make_populated_store(const TempDir& dir)
{
  auto store = Store::open(dir.path());
  REQUIRE_OK(store);
  for (int i = 0; i < 200; ++i) {
    const auto user = fmt::format("svc-user-{:03}", i);
    auto slot = store->ensure_slot("ci", user, user);
    REQUIRE_OK(slot);
    REQUIRE_OK(store->append_audit(state_test::t0(), *slot, std::nullopt, "note",
                                   fmt::format("some history for {}", user)));
  }
}

} // namespace

TEST_SUITE("state::Store opening")
{
  TEST_CASE("creating a store makes a WAL database with a fresh instance id")
  {
    TempDir dir;
    auto store = Store::open(dir.path());
    REQUIRE_OK(store);
    const auto& id = store->instance_id();
    CHECK(id.size() == 8);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(exists(dir.file("state.db-wal")));

    RawDb raw(dir.file("state.db"));
    CHECK(raw.scalar("PRAGMA journal_mode") == "wal");
    CHECK(raw.scalar("PRAGMA user_version") == std::to_string(state::schema::k_version));
    CHECK(raw.scalar("SELECT instance_id FROM instance") == id);
    // Bytes 18 and 19 of the header are 2 in WAL mode: the mode is in the file itself.
    const auto header = read_bytes(dir.file("state.db"));
    REQUIRE(header.size() >= 100);
    CHECK(header[18] == 2);
    CHECK(header[19] == 2);

    TempDir other;
    auto second = Store::open(other.path());
    REQUIRE_OK(second);
    CHECK(second->instance_id() != id);
  }

  TEST_CASE("reopening keeps the instance id")
  {
    TempDir dir;
    std::string id;
    {
      auto store = Store::open(dir.path());
      REQUIRE_OK(store);
      id = store->instance_id();
    }
    auto again = Store::open(dir.path());
    REQUIRE_OK(again);
    CHECK(again->instance_id() == id);
  }

  TEST_CASE("the token name key is made once, kept across reopening, and in no audit entry")
  {
    TempDir dir;
    std::string key;
    {
      auto store = Store::open(dir.path());
      REQUIRE_OK(store);
      key = store->name_key();
    }
    CHECK(key.size() == 64);
    CHECK(key.find_first_not_of("0123456789abcdef") == std::string::npos);
    auto again = Store::open(dir.path());
    REQUIRE_OK(again);
    CHECK(again->name_key() == key);
    for (const auto& e : again->audit(std::nullopt, 100).value()) {
      CHECK(e.detail.find(key) == std::string::npos);
    }
    TempDir other;
    auto second = Store::open(other.path());
    REQUIRE_OK(second);
    CHECK(second->name_key() != key);
  }

  TEST_CASE("a database whose token name key was removed is refused as corrupt, untouched")
  {
    TempDir dir;
    {
      auto store = Store::open(dir.path());
      REQUIRE_OK(store);
    }
    {
      RawDb raw(dir.file("state.db"));
      REQUIRE(raw.exec("UPDATE instance SET name_key = NULL").empty());
    }
    auto again = Store::open(dir.path());
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().kind == "corrupt");
    CHECK(again.error().message.find("token name key") != std::string::npos);
  }

  TEST_CASE("a missing state_dir is created with mode 0700")
  {
    TempDir dir;
    const auto sub = dir.file("state");
    auto store = Store::open(sub);
    REQUIRE_OK(store);
    struct stat st
    {};
    REQUIRE(::stat(sub.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
  }

  TEST_CASE("a second store on the same directory is refused while the first is open")
  {
    TempDir dir;
    auto first = Store::open(dir.path());
    REQUIRE_OK(first);

    auto second = Store::open(dir.path());
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().kind == "locked");
    CHECK(second.error().message.find(dir.file("lock")) != std::string::npos);
    CHECK(second.error().message.find(fmt::format("(pid {})", ::getpid())) != std::string::npos);

    // From another process: the child reports through its exit status and a pipe.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(fds[0]);
      auto other = Store::open(dir.path());
      const std::string text = other ? "opened" : other.error().kind + ": " + other.error().message;
      (void)!::write(fds[1], text.data(), text.size());
      ::_exit(other ? 1 : 0);
    }
    ::close(fds[1]);
    std::string text;
    char buf[512];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
      text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(text.rfind("locked: ", 0) == 0);
    CHECK(text.find(fmt::format("(pid {})", ::getpid())) != std::string::npos);

    // Once the first store closes, the directory is free again.
    first = util::Result<Store>(util::make_error("closed", ""));
    auto third = Store::open(dir.path());
    CHECK(third.has_value());
  }

  TEST_CASE("a state_dir owned by another user is refused")
  {
    if (::geteuid() != 0) {
      MESSAGE("skipped: needs root to chown the directory to nobody (65534)");
      return;
    }
    TempDir dir;
    REQUIRE(::chown(dir.path().c_str(), 65534, 65534) == 0);
    auto store = Store::open(dir.path());
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().kind == "permission");
    CHECK(store.error().message.find(dir.path()) != std::string::npos);
    CHECK(store.error().message.find("uid 65534") != std::string::npos);
    CHECK(store.error().message.find("run jenkins-token-rotator as") != std::string::npos);
    CHECK_FALSE(exists(dir.file("lock")));
    CHECK_FALSE(exists(dir.file("state.db")));

    // Our directory, but a database left behind by another user (a root `once`).
    TempDir mine;
    {
      auto store2 = Store::open(mine.path());
      REQUIRE_OK(store2);
    }
    REQUIRE(::chown(mine.file("state.db").c_str(), 65534, 65534) == 0);
    auto refused = Store::open(mine.path());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == "permission");
    CHECK(refused.error().message.find(mine.file("state.db")) != std::string::npos);
  }

  TEST_CASE("a schema newer than the binary is refused and the file left as is")
  {
    TempDir dir;
    {
      auto store = Store::open(dir.path());
      REQUIRE_OK(store);
    }
    {
      RawDb raw(dir.file("state.db"));
      REQUIRE(
        raw.exec(fmt::format("PRAGMA user_version = {}", state::schema::k_version + 1)).empty());
    }
    const auto before = read_bytes(dir.file("state.db"));
    auto store = Store::open(dir.path());
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().kind == "schema");
    CHECK(store.error().message.find(dir.file("state.db")) != std::string::npos);
    CHECK(store.error().message.find(fmt::format(
            "schema version {} is newer", state::schema::k_version + 1)) != std::string::npos);
    CHECK(read_bytes(dir.file("state.db")) == before);
  }

  TEST_CASE("a version 1 database is copied to state.db.bak-v1, then migrated")
  {
    TempDir dir;
    make_v1_database(dir.file("state.db"));

    auto store = Store::open(dir.path());
    REQUIRE_OK(store);
    CHECK(store->instance_id() == "abcdef01");
    CHECK(store->highest_seq().value() == 7);
    auto slot = store->find_slot("ci", "svc-deploy").value();
    REQUIRE(slot.has_value());
    CHECK(slot->user_display == "svc-Deploy");
    CHECK_FALSE(slot->degraded);
    CHECK(slot->consecutive_failures == 0);
    CHECK(store->open_attempts().value().size() == 1);
    const auto audit = store->audit(std::nullopt, 1).value();
    REQUIRE(audit.size() == 1);
    CHECK(audit[0].event == "migrated");
    CHECK(audit[0].detail.find("state.db.bak-v1") != std::string::npos);

    // The copy holds the data as it was before migrating: version 1, no v2 columns.
    REQUIRE(exists(dir.file("state.db.bak-v1")));
    RawDb copy(dir.file("state.db.bak-v1"));
    CHECK(copy.scalar("PRAGMA user_version") == "1");
    CHECK(copy.scalar("SELECT user_display FROM slots") == "svc-Deploy");
    CHECK(copy.scalar("SELECT count(*) FROM pragma_table_info('slots') WHERE name = 'degraded'") ==
          "0");
    RawDb migrated(dir.file("state.db"));
    CHECK(migrated.scalar("PRAGMA user_version") == std::to_string(state::schema::k_version));
    CHECK(migrated.scalar(
            "SELECT count(*) FROM pragma_table_info('slots') WHERE name = 'degraded'") == "1");
    // Schema 3: a token name key, made by the migration.
    CHECK(store->name_key().size() == 64);
    CHECK(migrated.scalar("SELECT name_key FROM instance") == store->name_key());
  }

  TEST_CASE("an earlier copy is never overwritten by the next migration")
  {
    TempDir dir;
    make_v1_database(dir.file("state.db"));
    write_bytes(dir.file("state.db.bak-v1"), "an operator's older copy");
    auto store = Store::open(dir.path());
    REQUIRE_OK(store);
    CHECK(read_bytes(dir.file("state.db.bak-v1")) == "an operator's older copy");
    RawDb copy(dir.file("state.db.bak-v1.2"));
    CHECK(copy.scalar("PRAGMA user_version") == "1");
  }

  TEST_CASE("a file of random bytes is refused and left byte-identical")
  {
    TempDir dir;
    std::string junk(8192, '\0');
    std::FILE* urandom = std::fopen("/dev/urandom", "rb");
    REQUIRE(urandom != nullptr);
    REQUIRE(std::fread(junk.data(), 1, junk.size(), urandom) == junk.size());
    std::fclose(urandom);
    write_bytes(dir.file("state.db"), junk);

    auto store = Store::open(dir.path());
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().kind == "corrupt");
    CHECK(store.error().message.find(dir.file("state.db")) != std::string::npos);
    CHECK(store.error().message.find("left as it is") != std::string::npos);
    CHECK(read_bytes(dir.file("state.db")) == junk);
    CHECK_FALSE(exists(dir.file("state.db-wal")));
  }

  TEST_CASE("a truncated database is refused and left byte-identical")
  {
    TempDir dir;
    make_populated_store(dir);
    auto bytes = read_bytes(dir.file("state.db"));
    REQUIRE(bytes.size() > 8 * 4096);
    bytes.resize(bytes.size() / 2);
    write_bytes(dir.file("state.db"), bytes);

    auto store = Store::open(dir.path());
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().kind == "corrupt");
    const auto& message = store.error().message;
    CHECK(message.rfind(dir.file("state.db") + ": damaged", 0) == 0);
    CHECK(message.find(dir.file("state.db"), 1) == std::string::npos); // named once
    CHECK(read_bytes(dir.file("state.db")) == bytes);
  }

  TEST_CASE("another program's SQLite database is refused")
  {
    TempDir dir;
    {
      RawDb raw(dir.file("state.db"));
      REQUIRE(raw.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x')").empty());
    }
    const auto before = read_bytes(dir.file("state.db"));
    auto store = Store::open(dir.path());
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().kind == "corrupt");
    CHECK(store.error().message.find("not a jenkins-token-rotator state database") !=
          std::string::npos);
    CHECK(read_bytes(dir.file("state.db")) == before);
  }
}
