#pragma once

#include "state/records.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3_stmt;

namespace state {

// A prepared statement borrowed from Database's cache. Destroying it resets the
// statement and clears its bindings, so a half-read SELECT never keeps a read snapshot
// open. Values are always bound, never pasted into SQL text.
class Statement
{
public:
  Statement(sqlite3_stmt* stmt, const std::string& db_path);
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds parameter `index` (1-based). Binding errors are bugs in our SQL (wrong index),
  // so they surface on step() through SQLite's own error state.
  void bind(int index, std::int64_t value);
  void bind(int index, int value) { bind(index, static_cast<std::int64_t>(value)); }
  void bind(int index, std::string_view value);
  void bind(int index, const std::string& value) { bind(index, std::string_view(value)); }
  void bind(int index, const char* value) { bind(index, std::string_view(value)); }
  void bind(int index, Time value);
  void bind(int index, std::nullopt_t);
  template<typename T>
  void bind(int index, const std::optional<T>& value)
  {
    if (value) {
      bind(index, *value);
    } else {
      bind(index, std::nullopt);
    }
  }

  // Binds every argument in order, starting at parameter 1.
  template<typename... Args>
  void bind_all(const Args&... args)
  {
    int index = 0;
    (bind(++index, args), ...);
  }

  // Advances one row: true when a row is ready, false when the statement is done.
  // Errors name the database file and carry SQLite's message.
  util::Result<bool> step();

  // Runs a statement that returns no rows (or whose rows do not matter).
  util::Result<void> run();

  [[nodiscard]] bool is_null(int column) const;
  [[nodiscard]] std::int64_t int64(int column) const;
  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] Time time(int column) const;
  [[nodiscard]] std::optional<std::int64_t> optional_int64(int column) const;
  [[nodiscard]] std::optional<std::string> optional_text(int column) const;
  [[nodiscard]] std::optional<Time> optional_time(int column) const;

private:
  sqlite3_stmt* m_stmt;
  const std::string* m_db_path;
};

} // namespace state
