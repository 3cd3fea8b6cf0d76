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

  [[nodiscard]] bool empty() const { return m_entries.empty(); }
  [[nodiscard]] std::size_t size() const { return m_entries.size(); }
  // All messages in document order, one per line, without a trailing newline.
  [[nodiscard]] std::string to_string() const;

private:
  struct Entry
  {
    Mark mark;
    std::string text;
  };
  std::vector<Entry> m_entries;
};

} // namespace config
