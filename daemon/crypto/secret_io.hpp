#pragma once

#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <span>
#include <string_view>

// Moving secrets between file descriptors and SecretBytes without a std::string in between.
namespace crypto {

// Reads `fd` to its end into locked memory. Errors (named after `where`): read errors, more
// than `max_bytes`. The content never appears in a message.
util::Result<SecretBytes> read_secret(int fd, std::size_t max_bytes, std::string_view where);

// Writes all of `bytes` to `fd` with write(2), retrying short writes and EINTR.
util::Result<void> write_all(int fd, std::span<const unsigned char> bytes, std::string_view where);

} // namespace crypto
