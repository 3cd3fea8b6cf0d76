#pragma once

#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

// Moving secrets between file descriptors and SecretBytes without a std::string in between.
namespace crypto {

// Who else may touch a secret file, judged on the opened descriptor (fstat), so the mode
// checked is the mode of the bytes read.
enum class SecretFileMode
{
  owner_only,             // 0600 or stricter: private keys
  not_readable_by_others, // no read bit for group or others: the admin token file
  not_writable_by_others, // no write bit for group or others: public keys
};

struct SecretFileRules
{
  std::string_view what; // "private key file": messages read "<what> <path>: ..."
  std::size_t max_bytes; // more is an error (a wrong path such as /dev/zero stays harmless)
  SecretFileMode mode;
};

// The one reader of secret files (keys, the admin token file). Opens with O_NONBLOCK (a
// FIFO or a device at the path must not hang the process: issue 19), O_CLOEXEC and
// O_NOCTTY, fstats the descriptor, requires a regular file with the mode `rules` ask for,
// and reads at most max_bytes into locked memory. Symlinks are followed: a key may live
// behind /etc/alternatives-style links; who may change the path is judged by the trusted
// file checks, not here. Errors name the file, never its content.
util::Result<SecretBytes> read_secret_file(const std::string& path, const SecretFileRules& rules);

// Reads `fd` to its end into locked memory. Errors (named after `where`): read errors, more
// than `max_bytes`. The content never appears in a message.
util::Result<SecretBytes> read_secret(int fd, std::size_t max_bytes, std::string_view where);

// Writes all of `bytes` to `fd` with write(2), retrying short writes and EINTR.
util::Result<void> write_all(int fd, std::span<const unsigned char> bytes, std::string_view where);

} // namespace crypto
