#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace crypto {

// The one type that holds a plain Jenkins token (DESIGN §1.5): memory from sodium_malloc
// (guard pages), locked with sodium_mlock (kept out of swap and core dumps), wiped on
// destruction. Up to 256 bytes: a cell of a sodium_malloc'd, locked slab shared with
// other secrets (wiped when released, reused); larger: a sodium_malloc of its own. Move-only; it
// never converts to std::string, so a secret cannot reach a log line or an exception message by
// accident.
class SecretBytes
{
public:
  // An empty buffer (size 0, no allocation).
  SecretBytes() = default;
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // `size` zeroed bytes. Errors: libsodium unusable, out of memory. A failed lock is not
  // an error: the buffer is still returned, the failure is logged once and counted in
  // lock_failures().
  static util::Result<SecretBytes> allocate(std::size_t size);
  // A locked copy of `bytes` (tests, and secrets that arrive in other buffers).
  static util::Result<SecretBytes> copy_of(std::span<const unsigned char> bytes);

  [[nodiscard]] unsigned char* data() { return m_data; }
  [[nodiscard]] const unsigned char* data() const { return m_data; }
  [[nodiscard]] std::size_t size() const { return m_size; }
  [[nodiscard]] bool empty() const { return m_size == 0; }
  [[nodiscard]] std::span<const unsigned char> view() const { return { m_data, m_size }; }
  [[nodiscard]] std::span<unsigned char> bytes() { return { m_data, m_size }; }

  // Shrinks to the first `n` bytes (n <= size()), wiping the rest; the allocation stays.
  // Lets a reader allocate a bound first and keep what it read.
  void resize_down(std::size_t n);

  // Constant-time comparison (sodium_memcmp); buffers of different sizes are unequal (the
  // length is not secret).
  [[nodiscard]] bool equals(const SecretBytes& other) const;
  [[nodiscard]] bool equals(std::span<const unsigned char> other) const;

private:
  SecretBytes(unsigned char* data, std::size_t size)
    : m_data(data)
    , m_size(size)
  {
  }
  void release();

  unsigned char* m_data = nullptr;
  std::size_t m_size = 0;
};

// How many SecretBytes allocations of this process could not be locked into RAM (usually
// RLIMIT_MEMLOCK used up): a metric, so a silent fallback to swappable memory is seen.
std::uint64_t lock_failures();

} // namespace crypto
