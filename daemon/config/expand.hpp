#pragma once

#include "util/error.hpp"
#include "util/secret_text.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace config {

// The bytes all `${file:}` substitutions of one load may add up to: 2,000 headers of
// one 64 KiB `${file:}` would otherwise take 128 MiB.
inline constexpr std::size_t k_max_file_expansion_bytes = 1024 * 1024;

// Expands `${NAME}` from the environment and `${file:PATH}` to the file's content
// without its trailing newline (PATH may itself hold `${NAME}`). A `$` not followed
// by `{` is literal. Error messages name the variable or the file, never the content
// of a file: a `${file:}` usually holds a secret.
//
// One Expander serves one load: each file is read (and checked) once, its content is
// kept in wiped memory until the Expander goes, and the bytes every `${file:}`
// substitution adds are counted against k_max_file_expansion_bytes.
class Expander
{
public:
  util::Result<util::SecretText> expand(std::string_view text);

  // `message` with the content of every file read so far replaced by its `${file:PATH}`
  // form, so that an error about an expanded value never shows a secret.
  [[nodiscard]] std::string redact(std::string message) const;

private:
  util::Result<void> expand_into(std::string_view text, bool allow_file, util::WipedString& out);
  util::Result<void> expand_one(std::string_view inner, util::WipedString& out);

  std::map<std::string, util::SecretText, std::less<>> m_files; // path -> content
  std::size_t m_expanded_bytes = 0;
};

// A one-off expansion with an Expander of its own.
util::Result<std::string> expand(std::string_view text);

// Whether `text` holds a `${file:` reference.
bool uses_file(std::string_view text);

} // namespace config
