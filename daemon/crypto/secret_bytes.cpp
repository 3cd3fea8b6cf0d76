#include "crypto/secret_bytes.hpp"

#include "crypto/sodium.hpp"
#include "util/log.hpp"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <pthread.h>
#include <utility>
#include <vector>

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

// Small secrets (a token, "user:token", its base64) come from cells of slabs that are
// themselves sodium_malloc'd and locked, and are wiped when released. A sodium_malloc per
// secret cost ten system calls (mmap, mprotect, mlock, madvise, munmap), each munmap a TLB
// shootdown on every core the process ran on: about a third of the CPU of a pass over
// 1,000 tokens (tests/bench/full-pass). What the cells give up is a guard page each;
// the slab keeps them at its ends. Larger secrets (keys read from files are small too,
// but a reader may ask for a bound) still get a sodium_malloc of their own.
constexpr std::size_t k_cell = 256;
constexpr std::size_t k_slab = 64 * 1024;

class Pool
{
public:
  Pool()
  {
    // A forked child does not inherit memory locks: it must not hand out the parent's
    // cells as locked memory. It starts an empty pool (the parent's slabs stay mapped).
    ::pthread_atfork([] { instance().m_mutex.lock(); }, [] { instance().m_mutex.unlock(); },
                     [] {
                       auto& p = instance();
                       new (&p.m_mutex) std::mutex();
                       p.m_free.clear();
                       // The parent's cells a SecretBytes of the child still holds are
                       // wiped when released, never handed out again (and never given
                       // to sodium_free, which would abort on them).
                       p.m_inherited.insert(p.m_inherited.end(), p.m_slabs.begin(),
                                            p.m_slabs.end());
                       p.m_slabs.clear();
                     });
  }

  static Pool& instance()
  {
    // Never destroyed: a static object's SecretBytes may be released after it.
    static Pool* const pool = new Pool();
    return *pool;
  }

  // A wiped cell, or nullptr when no slab can be had.
  unsigned char* take()
  {
    const std::lock_guard lock(m_mutex);
    if (m_free.empty()) {
      auto* slab = static_cast<unsigned char*>(sodium_malloc(k_slab));
      if (slab == nullptr) {
        return nullptr;
      }
      if (sodium_mlock(slab, k_slab) != 0) {
        note_lock_failure(errno, k_slab);
      }
      std::memset(slab, 0, k_slab);
      m_slabs.push_back(slab);
      for (std::size_t i = k_slab / k_cell; i-- > 0;) {
        m_free.push_back(slab + i * k_cell);
      }
    }
    auto* cell = m_free.back();
    m_free.pop_back();
    return cell;
  }

  // Wipes and keeps a cell of ours; false for memory the pool did not hand out.
  bool give_back(unsigned char* p)
  {
    const std::lock_guard lock(m_mutex);
    const bool ours = std::any_of(m_slabs.begin(), m_slabs.end(), [&](unsigned char* slab) {
      return p >= slab && p < slab + k_slab;
    });
    if (ours) {
      sodium_memzero(p, k_cell);
      m_free.push_back(p);
      return true;
    }
    const bool inherited =
      std::any_of(m_inherited.begin(), m_inherited.end(),
                  [&](unsigned char* slab) { return p >= slab && p < slab + k_slab; });
    if (inherited) {
      sodium_memzero(p, k_cell);
    }
    return inherited;
  }

private:
  std::mutex m_mutex;
  std::vector<unsigned char*> m_slabs;
  std::vector<unsigned char*> m_free;
  std::vector<unsigned char*> m_inherited; // slabs of the parent, in a forked child
};

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
    if (!Pool::instance().give_back(m_data)) {
      // sodium_free wipes the whole region and munlocks it before unmapping.
      sodium_free(m_data);
    }
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
  if (capacity <= k_cell) {
    if (auto* cell = Pool::instance().take()) {
      return SecretBytes(cell, size); // wiped when it was given back
    }
  }
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
