#include "state/schema.hpp"

#include "state/database.hpp"

#include <fmt/core.h>

#include <array>

namespace state::schema {

namespace {

// Version 1: the first layout. Times are integer unix seconds (UTC). Rows are never
// deleted except audit entries past retention, so history and foreign keys stay whole.
constexpr const char* k_v1 = R"sql(
-- One row: this database's identity. instance_id goes into every token name we mint
-- (DESIGN §2.1); last_seq is the highest seq ever handed out and only grows.
CREATE TABLE instance (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  instance_id TEXT    NOT NULL CHECK (length(instance_id) = 8),
  created     INTEGER NOT NULL,
  last_seq    INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

-- One row per (controller, user) ever configured; kept after the slot leaves the config
-- so its tokens can still be pruned. user_key is folded as Jenkins compares user ids.
-- The current token is the tokens row with role 'current' (one source of truth).
CREATE TABLE slots (
  id            INTEGER PRIMARY KEY,
  controller    TEXT    NOT NULL,
  user_key      TEXT    NOT NULL,
  user_display  TEXT    NOT NULL,
  last_rotation INTEGER,
  next_due      INTEGER,
  UNIQUE (controller, user_key)
);

-- One row per rotation attempt (DESIGN §2.2). seq comes from instance.last_seq; the token
-- name carries it, which is how a lost mint is found in Jenkins. error holds a failure
-- message or the outcome of an abandon; never a secret.
CREATE TABLE attempts (
  seq        INTEGER PRIMARY KEY CHECK (seq > 0),
  slot_id    INTEGER NOT NULL REFERENCES slots (id),
  state      TEXT    NOT NULL CHECK (state IN ('planned', 'minted', 'verified', 'delivering',
                                               'committed', 'failed', 'abandoned')),
  token_name TEXT    NOT NULL UNIQUE,
  error      TEXT,
  created    INTEGER NOT NULL,
  updated    INTEGER NOT NULL
);
CREATE INDEX attempts_by_slot ON attempts (slot_id, seq);

-- Every token we minted and persisted, by Jenkins uuid (our identity for a token). Name,
-- controller and user come from its attempt and slot. expires is the daemon's deadline
-- (created + lifetime); jenkins_expires is what Jenkins enforces (null: no expiry).
CREATE TABLE tokens (
  uuid            TEXT    PRIMARY KEY,
  seq             INTEGER NOT NULL UNIQUE REFERENCES attempts (seq),
  slot_id         INTEGER NOT NULL REFERENCES slots (id),
  created         INTEGER NOT NULL,
  expires         INTEGER NOT NULL,
  jenkins_expires INTEGER,
  role            TEXT    NOT NULL CHECK (role IN ('pending', 'current', 'previous', 'revoked')),
  retire_at       INTEGER,
  revoked_at      INTEGER
);
-- A slot has at most one current token, whatever the code does.
CREATE UNIQUE INDEX tokens_one_current ON tokens (slot_id) WHERE role = 'current';
CREATE INDEX tokens_by_role ON tokens (role);

-- The sealed envelope (DESIGN §6) each sink of an attempt receives, with a hash of the
-- sink's config. Only sealed envelopes: the plain token is never given to the store.
CREATE TABLE envelopes (
  seq        INTEGER NOT NULL REFERENCES attempts (seq),
  sink_index INTEGER NOT NULL CHECK (sink_index >= 0),
  sink_hash  TEXT    NOT NULL,
  envelope   TEXT    NOT NULL,
  PRIMARY KEY (seq, sink_index)
) WITHOUT ROWID;

-- The latest delivery result per attempt and sink; tries counts deliveries.
CREATE TABLE sink_results (
  seq        INTEGER NOT NULL,
  sink_index INTEGER NOT NULL,
  outcome    TEXT    NOT NULL CHECK (outcome IN ('ok', 'retryable', 'rejected')),
  message    TEXT    NOT NULL DEFAULT '',
  tries      INTEGER NOT NULL CHECK (tries > 0),
  updated    INTEGER NOT NULL,
  PRIMARY KEY (seq, sink_index),
  FOREIGN KEY (seq, sink_index) REFERENCES envelopes (seq, sink_index)
) WITHOUT ROWID;

-- Append-only log of every event (never a secret), trimmed after audit_retention.
CREATE TABLE audit (
  id      INTEGER PRIMARY KEY,
  time    INTEGER NOT NULL,
  slot_id INTEGER REFERENCES slots (id),
  seq     INTEGER,
  event   TEXT    NOT NULL,
  detail  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_slot ON audit (slot_id, id);
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
)sql";

// Version 2: slot health, for backoff after failures and slots whose delivery is stuck
// (DESIGN §2.2 "Slot errors", "Roll forward"); indexes for the resume and trim scans.
constexpr const char* k_v2 = R"sql(
ALTER TABLE slots ADD COLUMN backoff_until INTEGER;
ALTER TABLE slots ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0
  CHECK (consecutive_failures >= 0);
ALTER TABLE slots ADD COLUMN degraded INTEGER NOT NULL DEFAULT 0 CHECK (degraded IN (0, 1));
ALTER TABLE slots ADD COLUMN last_error TEXT;
CREATE INDEX attempts_by_state ON attempts (state);
CREATE INDEX audit_by_time ON audit (time);
)sql";

// Version 3: the key that makes our token names unforgeable (DESIGN §2.1): a MAC under it
// is appended to every name we mint, so a name that merely parses (anyone can name a
// token of their own so) is never taken for ours. Store::open fills it with 32 random
// bytes (64 lowercase hex) in the same transaction as this migration. It lives here, not in a file
// beside the database, so it travels with every backup: a restored old database still recognises
// the names its own key made later and knows it is stale.
constexpr const char* k_v3 = R"sql(
ALTER TABLE instance ADD COLUMN name_key TEXT CHECK (name_key IS NULL OR length(name_key) = 64);
)sql";

// Version 4: `auth: self` (docs/self-rotation.md). self_secrets holds, per attempt, the token
// value the daemon chose before its REST mint (addFixedToken), sealed to the daemon's
// state_key: before the call it is the intent a lost answer is checked against (/whoAmI),
// after the commit it is the slot's credential for its next rotation. self_sweeps marks a
// slot whose user may hold a token of ours whose uuid we never learnt (the bootstrap token,
// a lost mint that did happen): revokeAllExcept(current) removes it once not_before passed
// and no other token of the slot must live.
constexpr const char* k_v4 = R"sql(
CREATE TABLE self_secrets (
  seq    INTEGER PRIMARY KEY REFERENCES attempts (seq),
  sealed TEXT    NOT NULL
);
CREATE TABLE self_sweeps (
  slot_id    INTEGER PRIMARY KEY REFERENCES slots (id),
  not_before INTEGER NOT NULL,
  reason     TEXT    NOT NULL
);
)sql";

// Version 5: `admin_token_rotation` (docs/admin-token-rotation.md). One row per admin token
// of ours on a controller, and one for the bootstrap token from admin_token_file once its
// uuid was proven by its hash (seq NULL, state `bootstrap` until the first switch). `planned` is
// the intent committed before the mint (a lost answer is found by name); `minted` holds the uuid
// and the value sealed to the state key, before it is used; `current` is what the daemon
// authenticates with (sealed kept only with store: state); `previous` waits for retire_at; then
// `revoked`. `abandoned`/`failed` close an attempt whose token is gone or was never made.
constexpr const char* k_v5 = R"sql(
CREATE TABLE admin_tokens (
  id         INTEGER PRIMARY KEY,
  controller TEXT    NOT NULL,
  seq        INTEGER UNIQUE,
  name       TEXT    NOT NULL,
  uuid       TEXT,
  sealed     TEXT,
  state      TEXT    NOT NULL CHECK (state IN ('planned', 'minted', 'current', 'previous',
                                               'bootstrap', 'revoked', 'abandoned', 'failed')),
  created    INTEGER NOT NULL,
  switched   INTEGER,
  retire_at  INTEGER,
  closed_at  INTEGER,
  CHECK (state NOT IN ('minted', 'current') OR uuid IS NOT NULL),
  CHECK (state NOT IN ('revoked', 'abandoned', 'failed') OR sealed IS NULL)
);
CREATE UNIQUE INDEX admin_tokens_one_current ON admin_tokens (controller) WHERE state = 'current';
)sql";

// k_steps[i] takes the schema from version i to i + 1.
constexpr std::array<const char*, k_version> k_steps{ k_v1, k_v2, k_v3, k_v4, k_v5 };

} // namespace

util::Result<void>
migrate(Database& db, int from)
{
  for (int v = from; v < k_version; ++v) {
    if (auto r = db.exec(k_steps[static_cast<std::size_t>(v)]); !r) {
      return util::make_error("schema", fmt::format("migration to schema version {} failed: {}",
                                                    v + 1, r.error().message));
    }
  }
  // PRAGMA takes no bound parameters; both values are compile-time constants.
  const auto pragmas = fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {};",
                                   k_application_id, k_version);
  return db.exec(pragmas.c_str());
}

} // namespace state::schema
