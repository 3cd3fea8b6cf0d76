#include "config/diagnostics.hpp"

#include "util/quote.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace config {

namespace {

// A message as long as any we write ourselves; what passes it came from the input.
constexpr std::size_t k_max_message_bytes = 1000;

// Config errors echo what the file said (keys, values, paths, parser words): no newline,
// escape, bidi control or invalid UTF-8 of the input reaches the terminal, and a value
// after "found " is cut at util::k_max_echo_bytes (issue 19 #5).
std::string
clean(std::string_view message)
{
  const auto found = message.rfind("found ");
  if (found == std::string_view::npos) {
    return util::escape(message, k_max_message_bytes);
  }
  const auto head = message.substr(0, found + 6);
  return util::escape(head, k_max_message_bytes) +
         util::escape(message.substr(found + 6), util::k_max_echo_bytes);
}

} // namespace

const std::string&
MarkFile::str() const
{
  static const std::string k_none;
  return m_name ? *m_name : k_none;
}

std::string
Mark::to_string() const
{
  return fmt::format("{}:{}:{}", file.str(), line, column);
}

void
Diagnostics::add(const Mark& mark, const std::string& path, const std::string& message)
{
  ++m_total;
  m_file = mark.file.str();
  if (m_entries.size() >= k_max_kept) {
    return;
  }
  std::string text = util::escape(mark.to_string(), k_max_message_bytes) + ": ";
  if (!path.empty()) {
    text += util::escape(path, k_max_message_bytes) + ": ";
  }
  text += clean(message);
  m_entries.push_back({ mark, std::move(text) });
}

void
Diagnostics::add_file_error(const std::string& file, const std::string& message)
{
  m_entries.push_back(
    { Mark{ file, 0, 0 },
      fmt::format("{}: {}", util::escape(file, k_max_message_bytes), clean(message)) });
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
    out += fmt::format("\n{}: and {} more errors", util::escape(m_file, k_max_message_bytes),
                       m_total - m_entries.size());
  }
  return out;
}

} // namespace config
