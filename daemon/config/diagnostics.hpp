#pragma once

#include "config/config.hpp"

#include <string>
#include <vector>

namespace config {

// Collects every validation error of one load, so the operator sees them all at once.
// Each message reads `FILE:LINE:COL: key.path: expected …, found …`.
class Diagnostics
{
public:
  void add(const Mark& mark, const std::string& path, const std::string& message);
  // An error with no useful position (the file cannot be read at all).
  void add_file_error(const std::string& file, const std::string& message);

  [[nodiscard]] bool empty() const { return m_total == 0; }
  [[nodiscard]] std::size_t size() const { return m_total; }
  // All messages in document order, one per line, without a trailing newline.
  [[nodiscard]] std::string to_string() const;

private:
  struct Entry
  {
    Mark mark;
    std::string text;
  };
  // The first k_max_kept errors are kept; a file with thousands of mistakes gets
  // those and a count, not a wall of text.
  static constexpr std::size_t k_max_kept = 100;
  std::vector<Entry> m_entries;
  std::size_t m_total = 0;
  std::string m_file;
};

} // namespace config
