#pragma once

#include "util/secret_text.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace net {

// Overwrites `size` bytes at `data` with zeros in a way the optimiser keeps, for buffers
// that held a plain token (util::wipe: explicit_bzero).
inline void
secure_wipe(void* data, std::size_t size) noexcept
{
  util::wipe(data, size);
}

// A std::allocator that zeroes every block before giving it back, so a buffer that held a
// secret (an HTTP answer carrying a minted token, the Basic auth header) leaves nothing
// behind when it grows or dies: util's, the one wiping allocator. Memory is not locked:
// the decoder moves the token itself into crypto::SecretBytes (sodium_malloc, mlock).
using util::WipingAllocator;

// A byte buffer for answers that may carry secrets. A vector rather than a string on
// purpose: std::string keeps short contents inline (SSO), outside the allocator's reach.
using WipedBytes = std::vector<char, WipingAllocator<char>>;

// A string for secrets that are always longer than the SSO buffer (header values).
using util::WipedString;

} // namespace net
