#pragma once

#include <cstddef>
#include <new>
#include <string>
#include <string_view>

// Text that may hold a secret read from a file the config names (an http sink header
// value through `${file:}`). The config may not use crypto (DESIGN §9), so this is the
// small wiping type it keeps such values in instead of crypto::SecretBytes: every
// buffer it used is zeroed when given back, the inline (SSO) one included. Memory is
// not locked; consumers copy it into their own wiped buffers (net::WipedString).
namespace util {

// Zeroes `size` bytes at `data` in a way the optimiser keeps (explicit_bzero).
void wipe(void* data, std::size_t size) noexcept;

// A std::allocator that zeroes every block before giving it back.
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
    wipe(p, n * sizeof(T));
    ::operator delete(p);
  }

  template<typename U>
  bool operator==(const WipingAllocator<U>&) const noexcept
  {
    return true;
  }
};

using WipedString = std::basic_string<char, std::char_traits<char>, WipingAllocator<char>>;

class SecretText
{
public:
  SecretText() = default;
  // Implicit, so that a value written in a test or a hand-built config reads naturally.
  SecretText(std::string_view text) // NOLINT(google-explicit-constructor)
    : m_text(text.begin(), text.end())
  {
  }
  SecretText(const char* text) // NOLINT(google-explicit-constructor)
    : SecretText(std::string_view(text))
  {
  }
  explicit SecretText(WipedString&& text)
    : m_text(std::move(text))
  {
  }
  SecretText(const SecretText&) = default;
  SecretText(SecretText&&) noexcept = default;
  SecretText& operator=(const SecretText& other)
  {
    if (this != &other) {
      wipe_inline();
      m_text = other.m_text;
    }
    return *this;
  }
  SecretText& operator=(SecretText&& other) noexcept
  {
    wipe_inline();
    m_text = std::move(other.m_text);
    return *this;
  }
  ~SecretText() { wipe_inline(); }

  [[nodiscard]] std::string_view view() const { return m_text; }
  [[nodiscard]] std::size_t size() const { return m_text.size(); }
  [[nodiscard]] bool empty() const { return m_text.empty(); }

  // For tests; not constant-time.
  friend bool operator==(const SecretText& a, std::string_view b) { return a.view() == b; }

private:
  // A heap buffer is wiped by the allocator; the inline one only here.
  void wipe_inline() noexcept { wipe(m_text.data(), m_text.capacity()); }

  WipedString m_text;
};

} // namespace util
