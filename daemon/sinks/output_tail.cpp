#include "sinks/output_tail.hpp"

#include <fmt/core.h>

namespace sinks {

namespace {

// A sealed 34-character Jenkins token is 82 bytes, 112 base64 characters; 40 keeps
// even a cut-off piece of one out while sparing paths, uuids and token names.
constexpr std::size_t k_redact_run = 40;

bool
is_base64(char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

// Random bytes in base64 mix cases and digits; a long lowercase path does not.
bool
looks_random(std::string_view run)
{
  bool upper = false;
  bool lower = false;
  bool digit = false;
  for (const char c : run) {
    upper = upper || (c >= 'A' && c <= 'Z');
    lower = lower || (c >= 'a' && c <= 'z');
    digit = digit || (c >= '0' && c <= '9');
  }
  return upper && lower && digit;
}

} // namespace

OutputTail::OutputTail(std::size_t limit)
  : m_limit(limit)
{
}

void
OutputTail::append(std::string_view bytes)
{
  m_total += bytes.size();
  if (bytes.size() >= m_limit) {
    m_buffer.assign(bytes.substr(bytes.size() - m_limit));
    return;
  }
  m_buffer.append(bytes);
  if (m_buffer.size() > m_limit) {
    m_buffer.erase(0, m_buffer.size() - m_limit);
  }
}

std::string
OutputTail::text() const
{
  std::string out;
  if (m_total > m_buffer.size()) {
    out += "…";
  }
  std::string_view rest = m_buffer;
  // A trailing newline is the usual end of output, not content.
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) {
    rest.remove_suffix(1);
  }
  std::size_t i = 0;
  while (i < rest.size()) {
    if (is_base64(rest[i])) {
      std::size_t j = i;
      while (j < rest.size() && is_base64(rest[j])) {
        ++j;
      }
      const auto run = rest.substr(i, j - i);
      if (run.size() >= k_redact_run && looks_random(run)) {
        out += fmt::format("[{} base64 characters redacted]", run.size());
      } else {
        out += run;
      }
      i = j;
      continue;
    }
    const auto c = static_cast<unsigned char>(rest[i]);
    if (c == '\n') {
      out += " | ";
    } else if (c == '\t') {
      out += ' ';
    } else if (c < 0x20 || c == 0x7f) {
      out += '?';
    } else {
      out += rest[i];
    }
    ++i;
  }
  return out;
}

} // namespace sinks
