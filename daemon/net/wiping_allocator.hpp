#pragma once

#include <cstddef>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace net {

// Overwrites `size` bytes at `data` with zeros in a way the optimiser keeps
// (OPENSSL_cleanse), for buffers that held a plain token.
void secure_wipe(void* data, std::size_t size) noexcept;

// A std::allocator that zeroes every block before giving it back, so a buffer that
// held a secret (an HTTP answer carrying a minted token, the Basic auth header)
// leaves nothing behind when it grows or dies. Memory is not locked: the decoder of
// issue 7 moves the token itself into crypto::SecretBytes (sodium_malloc, mlock).
template<typename T>
class WipingAllocator
{
public:
  using value_type = T;

  WipingAllocator() noexcept = default;
  template<typename U>
  WipingAllocator(const WipingAllocator<U>&) noexcept // NOLINT: converting, as allocators must
  {
  }

  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept
  {
    secure_wipe(p, n * sizeof(T));
    ::operator delete(p);
  }

  template<typename U>
  bool operator==(const WipingAllocator<U>&) const noexcept
  {
    return true;
  }
};

// A byte buffer for answers that may carry secrets. A vector rather than a string on
// purpose: std::string keeps short contents inline (SSO), outside the allocator's reach.
using WipedBytes = std::vector<char, WipingAllocator<char>>;

// A string for secrets that are always longer than the SSO buffer (header values).
using WipedString = std::basic_string<char, std::char_traits<char>, WipingAllocator<char>>;

} // namespace net
