#include "state/statement.hpp"

#include <fmt/core.h>
#include <sqlite3.h>

#include <utility>

namespace state {

Statement::Statement(sqlite3_stmt* stmt, const std::string& db_path)
  : m_stmt(stmt)
  , m_db_path(&db_path)
{
}

Statement::~Statement()
{
  if (m_stmt != nullptr) {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
  }
}

Statement::Statement(Statement&& other) noexcept
  : m_stmt(std::exchange(other.m_stmt, nullptr))
  , m_db_path(other.m_db_path)
{
}

void
Statement::bind(int index, std::int64_t value)
{
  sqlite3_bind_int64(m_stmt, index, value);
}

void
Statement::bind(int index, std::string_view value)
{
  sqlite3_bind_text64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void
Statement::bind(int index, Time value)
{
  sqlite3_bind_int64(m_stmt, index, value.time_since_epoch().count());
}

void
Statement::bind(int index, std::nullopt_t)
{
  sqlite3_bind_null(m_stmt, index);
}

util::Result<bool>
Statement::step()
{
  const int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  sqlite3* db = sqlite3_db_handle(m_stmt);
  const std::string_view kind = (rc & 0xff) == SQLITE_CONSTRAINT ? "constraint"
                                : (rc & 0xff) == SQLITE_BUSY     ? "locked"
                                                                 : "db";
  return util::make_error(std::string(kind), fmt::format("{}: {} (in: {})", *m_db_path,
                                                         sqlite3_errmsg(db), sqlite3_sql(m_stmt)));
}

util::Result<void>
Statement::run()
{
  for (;;) {
    auto row = step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return {};
    }
  }
}

bool
Statement::is_null(int column) const
{
  return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

std::int64_t
Statement::int64(int column) const
{
  return sqlite3_column_int64(m_stmt, column);
}

std::string
Statement::text(int column) const
{
  const auto* p = sqlite3_column_text(m_stmt, column);
  const int n = sqlite3_column_bytes(m_stmt, column);
  if (p == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

Time
Statement::time(int column) const
{
  return Time(std::chrono::seconds(int64(column)));
}

std::optional<std::int64_t>
Statement::optional_int64(int column) const
{
  if (is_null(column)) {
    return std::nullopt;
  }
  return int64(column);
}

std::optional<std::string>
Statement::optional_text(int column) const
{
  if (is_null(column)) {
    return std::nullopt;
  }
  return text(column);
}

std::optional<Time>
Statement::optional_time(int column) const
{
  if (is_null(column)) {
    return std::nullopt;
  }
  return time(column);
}

} // namespace state
