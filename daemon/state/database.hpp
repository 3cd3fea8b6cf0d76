#pragma once

#include "state/statement.hpp"
#include "util/error.hpp"

#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace state {

// One SQLite connection with a cache of prepared statements. Not movable: statements
// borrowed from the cache point back at it (Store keeps it behind a unique_ptr).
class Database
{
public:
  explicit Database(std::string path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Opens the file read-write; with `create` false a missing file is an error.
  util::Result<void> open(bool create);

  // Runs constant SQL (schema, pragmas, transaction control): never text built from input.
  util::Result<void> exec(const char* sql);

  // A statement for `sql` from the cache, compiled on first use. `sql` is a constant.
  util::Result<Statement> prepare(const char* sql);

  // The connection's latest error as "PATH: what: SQLite message".
  [[nodiscard]] util::Error error(std::string_view kind, std::string_view what) const;

  // Rows changed by the latest INSERT/UPDATE/DELETE.
  [[nodiscard]] std::int64_t changes() const;

  // True while a transaction (BEGIN or SAVEPOINT) is open.
  [[nodiscard]] bool in_transaction() const;

  [[nodiscard]] const std::string& path() const { return m_path; }
  [[nodiscard]] sqlite3* handle() const { return m_db; }

private:
  std::string m_path;
  sqlite3* m_db = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> m_cache;
};

} // namespace state
