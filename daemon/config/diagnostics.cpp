#include "config/diagnostics.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace config {

std::string
Mark::to_string() const
{
  return fmt::format("{}:{}:{}", file, line, column);
}

void
Diagnostics::add(const Mark& mark, const std::string& path, const std::string& message)
{
  ++m_total;
  m_file = mark.file;
  if (m_entries.size() >= k_max_kept) {
    return;
  }
  std::string text = mark.to_string() + ": ";
  if (!path.empty()) {
    text += path + ": ";
  }
  text += message;
  m_entries.push_back({ mark, std::move(text) });
}

void
Diagnostics::add_file_error(const std::string& file, const std::string& message)
{
  m_entries.push_back({ Mark{ file, 0, 0 }, fmt::format("{}: {}", file, message) });
}

std::string
Diagnostics::to_string() const
{
  auto sorted = m_entries;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return std::pair(a.mark.line, a.mark.column) < std::pair(b.mark.line, b.mark.column);
  });
  std::string out;
  for (const auto& e : sorted) {
    if (!out.empty()) {
      out += '\n';
    }
    out += e.text;
  }
  if (m_total > m_entries.size()) {
    out += fmt::format("\n{}: and {} more errors", m_file, m_total - m_entries.size());
  }
  return out;
}

} // namespace config
