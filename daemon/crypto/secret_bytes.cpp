#include "crypto/secret_bytes.hpp"

#include "crypto/sodium.hpp"
#include "util/log.hpp"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

namespace crypto {

namespace {

std::atomic<std::uint64_t> g_lock_failures{ 0 };
std::atomic<bool> g_lock_warned{ false };

void
note_lock_failure(int err, std::size_t size)
{
  g_lock_failures.fetch_add(1, std::memory_order_relaxed);
  if (!g_lock_warned.exchange(true)) {
    util::log::warning("cannot lock {} bytes of secret memory into RAM ({}); secrets may be "
                       "swapped out: raise LimitMEMLOCK= (RLIMIT_MEMLOCK). Logged once; "
                       "counted in the crypto lock failures metric",
                       size, std::strerror(err));
  }
}

} // namespace

SecretBytes::~SecretBytes()
{
  release();
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
  : m_data(std::exchange(other.m_data, nullptr))
  , m_size(std::exchange(other.m_size, 0))
{
}

SecretBytes&
SecretBytes::operator=(SecretBytes&& other) noexcept
{
  if (this != &other) {
    release();
    m_data = std::exchange(other.m_data, nullptr);
    m_size = std::exchange(other.m_size, 0);
  }
  return *this;
}

void
SecretBytes::release()
{
  if (m_data != nullptr) {
    // sodium_free wipes the whole region and munlocks it before unmapping.
    sodium_free(m_data);
    m_data = nullptr;
    m_size = 0;
  }
}

util::Result<SecretBytes>
SecretBytes::allocate(std::size_t size)
{
  if (auto ok = init_sodium(); !ok) {
    return ok.error();
  }
  // Even an empty buffer gets memory, so data() is never null for libsodium calls.
  const std::size_t capacity = std::max<std::size_t>(size, 1);
  auto* p = static_cast<unsigned char*>(sodium_malloc(capacity));
  if (p == nullptr) {
    return util::make_error("memory", fmt::format("cannot allocate {} bytes of secret memory: {}",
                                                  size, std::strerror(errno)));
  }
  // sodium_malloc already tried to mlock but ignores the answer, so a process past
  // RLIMIT_MEMLOCK would silently hold secrets in swappable pages. Lock again and look.
  if (sodium_mlock(p, capacity) != 0) {
    note_lock_failure(errno, capacity);
  }
  std::memset(p, 0, capacity);
  return SecretBytes(p, size);
}

util::Result<SecretBytes>
SecretBytes::copy_of(std::span<const unsigned char> bytes)
{
  auto s = allocate(bytes.size());
  if (s && !bytes.empty()) {
    std::memcpy(s->data(), bytes.data(), bytes.size());
  }
  return s;
}

void
SecretBytes::resize_down(std::size_t n)
{
  n = std::min(n, m_size);
  if (n < m_size) {
    sodium_memzero(m_data + n, m_size - n);
  }
  m_size = n;
}

bool
SecretBytes::equals(const SecretBytes& other) const
{
  return equals(other.view());
}

bool
SecretBytes::equals(std::span<const unsigned char> other) const
{
  if (other.size() != m_size) {
    return false;
  }
  if (m_size == 0) {
    return true;
  }
  return sodium_memcmp(m_data, other.data(), m_size) == 0;
}

std::uint64_t
lock_failures()
{
  return g_lock_failures.load(std::memory_order_relaxed);
}

} // namespace crypto
