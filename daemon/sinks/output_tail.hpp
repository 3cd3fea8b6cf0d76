#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sinks {

// The last bytes a hook wrote, fit for one log line: bounded, control characters
// replaced, and long base64 runs (a ciphertext a hook echoed back) redacted, so that
// a log line never holds an envelope's ciphertext in full.
class OutputTail
{
public:
  explicit OutputTail(std::size_t limit = 4096);

  void append(std::string_view bytes);

  // The kept bytes as one line; "…" first when older output was dropped.
  [[nodiscard]] std::string text() const;
  [[nodiscard]] bool empty() const { return m_total == 0; }
  [[nodiscard]] std::size_t total() const { return m_total; }

private:
  std::size_t m_limit;
  std::size_t m_total = 0;
  std::string m_buffer;
};

} // namespace sinks
