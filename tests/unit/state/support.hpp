#pragma once

#include "state/records.hpp"
#include "util/error.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

// Requires a util::Result to hold a value, showing its error message otherwise (doctest
// cannot print a Result itself).
#define REQUIRE_OK(expr)                                                                           \
  do {                                                                                             \
    const auto& require_ok_r = (expr);                                                             \
    REQUIRE_MESSAGE(require_ok_r.has_value(),                                                      \
                    (require_ok_r.has_value() ? std::string() : require_ok_r.error().message));    \
  } while (false)

// Helpers for the state tests: a real temporary directory and a raw SQLite connection to
// inspect or hand-craft what the Store reads.
namespace state_test {

class TempDir
{
public:
  TempDir()
  {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = fmt::format("{}/jtr-state-XXXXXX", base != nullptr ? base : "/tmp");
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    m_path = tmpl;
  }
  ~TempDir()
  {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::string& path() const { return m_path; }
  [[nodiscard]] std::string file(std::string_view name) const
  {
    return fmt::format("{}/{}", m_path, name);
  }

private:
  std::string m_path;
};

inline std::string
read_bytes(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  return { std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>() };
}

inline void
write_bytes(const std::string& path, const std::string& bytes)
{
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A plain sqlite3 connection, outside the Store.
class RawDb
{
public:
  explicit RawDb(const std::string& path)
  {
    REQUIRE(sqlite3_open(path.c_str(), &m_db) == SQLITE_OK);
  }
  ~RawDb() { sqlite3_close(m_db); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Runs constant SQL; returns SQLite's error message, empty on success.
  std::string exec(const std::string& sql)
  {
    char* message = nullptr;
    const int rc = sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &message);
    std::string text = rc == SQLITE_OK ? "" : (message != nullptr ? message : "error");
    sqlite3_free(message);
    return text;
  }

  // The first column of the first row, as text ("" when there is none).
  std::string scalar(const std::string& sql)
  {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(m_db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    std::string value;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return value;
  }

private:
  sqlite3* m_db = nullptr;
};

// 2026-11-27T03:00:00Z, a fixed instant so tests do not depend on the clock.
inline state::Time
t0()
{
  return state::Time(std::chrono::seconds(1795748400));
}

} // namespace state_test
