#pragma once

#include "util/error.hpp"

#include <string>
#include <string_view>

namespace config {

// Expands `${NAME}` from the environment and `${file:PATH}` to the file's content
// without its trailing newline (PATH may itself hold `${NAME}`). A `$` not followed
// by `{` is literal. Error messages name the variable or the file, never the content
// of a file: a `${file:}` usually holds a secret.
util::Result<std::string> expand(std::string_view text);

} // namespace config
