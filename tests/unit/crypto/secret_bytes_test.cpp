#include "crypto/secret_bytes.hpp"
#include "support/text.hpp"
#include "util/log.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <linux/capability.h>
#include <string>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

using test::as_bytes;

// ASan replaces mlock/munlock with interceptors that do nothing and answer 0, so under
// ASan neither VmLck nor a lock failure can be observed; the release build tests both.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JTR_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(JTR_TEST_ASAN)
constexpr bool k_mlock_is_intercepted = true;
#else
constexpr bool k_mlock_is_intercepted = false;
#endif

// VmLck of this process in kB, from /proc/self/status.
long
vm_lck_kb()
{
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmLck:")) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

} // namespace

TEST_SUITE("crypto::SecretBytes")
{
  TEST_CASE("allocate gives zeroed memory of the asked size")
  {
    auto s = crypto::SecretBytes::allocate(100);
    REQUIRE(s.has_value());
    CHECK(s->size() == 100);
    CHECK(s->view().size() == 100);
    for (const auto b : s->view()) {
      CHECK(b == 0);
    }
    s->bytes()[99] = 7;
    CHECK(s->data()[99] == 7);
  }

  TEST_CASE("an empty buffer still has memory for libsodium calls")
  {
    auto s = crypto::SecretBytes::allocate(0);
    REQUIRE(s.has_value());
    CHECK(s->empty());
    CHECK(s->data() != nullptr);
  }

  TEST_CASE("moving transfers the memory and empties the source")
  {
    auto a = crypto::SecretBytes::copy_of(as_bytes("token-value"));
    REQUIRE(a.has_value());
    const unsigned char* p = a->data();
    crypto::SecretBytes b = std::move(*a);
    CHECK(b.data() == p);
    CHECK(b.size() == 11);
    CHECK(a->size() == 0);
    CHECK(a->data() == nullptr);
    crypto::SecretBytes c;
    c = std::move(b);
    CHECK(c.data() == p);
    CHECK(c.equals(as_bytes("token-value")));
  }

  TEST_CASE("equals compares content and length")
  {
    auto a = crypto::SecretBytes::copy_of(as_bytes("abcdef"));
    auto b = crypto::SecretBytes::copy_of(as_bytes("abcdef"));
    auto c = crypto::SecretBytes::copy_of(as_bytes("abcdeg"));
    auto d = crypto::SecretBytes::copy_of(as_bytes("abcde"));
    REQUIRE((a.has_value() && b.has_value() && c.has_value() && d.has_value()));
    CHECK(a->equals(*b));
    CHECK_FALSE(a->equals(*c));
    CHECK_FALSE(a->equals(*d));
    CHECK_FALSE(d->equals(*a));
  }

  TEST_CASE("resize_down keeps the prefix and wipes the rest")
  {
    auto s = crypto::SecretBytes::copy_of(as_bytes("0123456789"));
    REQUIRE(s.has_value());
    unsigned char* p = s->data();
    s->resize_down(4);
    CHECK(s->size() == 4);
    CHECK(s->equals(as_bytes("0123")));
    // The tail still belongs to the allocation; it must now be zero.
    for (int i = 4; i < 10; ++i) {
      CHECK(p[i] == 0);
    }
  }

  TEST_CASE("small SecretBytes share a locked slab; a large one locks pages of its own" *
            doctest::skip(k_mlock_is_intercepted))
  {
    const long page_kb = ::sysconf(_SC_PAGESIZE) / 1024;
    std::vector<crypto::SecretBytes> live;
    for (int i = 0; i < 4; ++i) {
      auto s = crypto::SecretBytes::allocate(64);
      REQUIRE(s.has_value());
      live.push_back(std::move(*s));
    }
    // The slab (64 KiB) stays locked for the next secrets.
    const long with_small = vm_lck_kb();
    CHECK(with_small >= 64);
    {
      auto big = crypto::SecretBytes::allocate(5000);
      REQUIRE(big.has_value());
      const long during = vm_lck_kb();
      MESSAGE("VmLck with small secrets ", with_small, " kB, and a 5000-byte one ", during, " kB");
      CHECK(during >= with_small + 2 * page_kb);
    }
    CHECK(vm_lck_kb() == with_small);
  }

  TEST_CASE("a released small secret is wiped before its cell is handed out again")
  {
    unsigned char* cell = nullptr;
    {
      auto s = crypto::SecretBytes::allocate(200);
      REQUIRE(s.has_value());
      cell = s->data();
      std::memset(s->data(), 0x5a, s->size());
    }
    // The cell stays mapped in its slab: what a later reader of that memory would find.
    for (int i = 0; i < 200; ++i) {
      REQUIRE(cell[i] == 0);
    }
    auto again = crypto::SecretBytes::allocate(100);
    REQUIRE(again.has_value());
    CHECK(again->data() == cell); // the last cell given back is the next handed out
    CHECK(again->size() == 100);
  }

  TEST_CASE("a forked child releases a cell of its parent: wiped, not freed, not reused")
  {
    auto held = crypto::SecretBytes::allocate(32);
    REQUIRE(held.has_value());
    std::memset(held->data(), 0x5a, held->size());
    unsigned char* cell = held->data();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      {
        auto gone = std::move(*held); // released here: sodium_free on a cell would abort
      }
      for (int i = 0; i < 32; ++i) {
        if (cell[i] != 0) {
          code |= 1;
        }
      }
      auto fresh = crypto::SecretBytes::allocate(32);
      if (!fresh || fresh->data() == cell) {
        code |= 2; // the child's pool starts empty: never the parent's cell
      }
      ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(held->data()[0] == 0x5a); // the parent's copy is its own
  }

  TEST_CASE("a failed lock is counted and logged once, and the memory still works" *
            doctest::skip(k_mlock_is_intercepted))
  {
    const auto parent_failures = crypto::lock_failures();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // CAP_IPC_LOCK ignores RLIMIT_MEMLOCK (tests may run as root): drop it from the
      // effective set, then allow no locked memory at all.
      __user_cap_header_struct header{ _LINUX_CAPABILITY_VERSION_3, 0 };
      __user_cap_data_struct caps[2]{};
      if (::syscall(SYS_capget, &header, caps) == 0) {
        caps[0].effective &= ~(1U << CAP_IPC_LOCK);
        if (::syscall(SYS_capset, &header, caps) != 0) {
          ::_exit(10);
        }
      }
      const rlimit none{ 0, 0 };
      if (::setrlimit(RLIMIT_MEMLOCK, &none) != 0) {
        ::_exit(11);
      }
      int warnings = 0;
      util::log::set_sink([&](std::string_view line) {
        if (line.find("cannot lock") != std::string_view::npos) {
          ++warnings;
        }
      });
      auto a = crypto::SecretBytes::allocate(64);
      auto b = crypto::SecretBytes::allocate(5000);
      int code = 0;
      if (!a || !b) {
        ::_exit(12);
      }
      if (crypto::lock_failures() != parent_failures + 2) {
        code |= 1;
      }
      // Logged once per process: not at all when the parent already did.
      if (warnings != (parent_failures == 0 ? 1 : 0)) {
        code |= 2;
      }
      std::memset(b->data(), 0x5a, b->size());
      if (b->data()[4999] != 0x5a) {
        code |= 4;
      }
      ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(crypto::lock_failures() == parent_failures);
  }
}
