#include "state/database.hpp"

#include <fmt/core.h>
#include <sqlite3.h>

namespace state {

Database::Database(std::string path)
  : m_path(std::move(path))
{
}

Database::~Database()
{
  for (auto& entry : m_cache) {
    sqlite3_finalize(entry.second);
  }
  if (m_db != nullptr) {
    // Every statement is finalized above, so close cannot fail with SQLITE_BUSY; the last
    // connection's close checkpoints the WAL into the database file.
    sqlite3_close(m_db);
  }
}

util::Result<void>
Database::open(bool create)
{
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (create) {
    flags |= SQLITE_OPEN_CREATE;
  }
  const int rc = sqlite3_open_v2(m_path.c_str(), &m_db, flags, nullptr);
  if (rc != SQLITE_OK) {
    auto e = error("db", "cannot be opened");
    return e;
  }
  return {};
}

util::Result<void>
Database::exec(const char* sql)
{
  char* message = nullptr;
  const int rc = sqlite3_exec(m_db, sql, nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    const bool busy = (rc & 0xff) == SQLITE_BUSY;
    return util::make_error(busy ? "locked" : "db", fmt::format("{}: {}", m_path, text));
  }
  return {};
}

util::Result<Statement>
Database::prepare(const char* sql)
{
  auto it = m_cache.find(sql);
  if (it == m_cache.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(m_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      return error("db", "cannot prepare a statement");
    }
    it = m_cache.emplace(sql, stmt).first;
  }
  return Statement(it->second, m_path);
}

util::Error
Database::error(std::string_view kind, std::string_view what) const
{
  const char* detail = m_db != nullptr ? sqlite3_errmsg(m_db) : "out of memory";
  return util::make_error(std::string(kind), fmt::format("{}: {}: {}", m_path, what, detail));
}

std::int64_t
Database::changes() const
{
  return sqlite3_changes64(m_db);
}

bool
Database::in_transaction() const
{
  return sqlite3_get_autocommit(m_db) == 0;
}

} // namespace state
