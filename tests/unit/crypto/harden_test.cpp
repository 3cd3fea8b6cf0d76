#include "crypto/harden.hpp"

#include <doctest/doctest.h>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

TEST_SUITE("crypto::harden_process")
{
  TEST_CASE("turns core dumps off and makes the process non-dumpable")
  {
    // In a child, so the test binary itself keeps its limits.
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const rlimit some{ 1 << 20, RLIM_INFINITY };
      ::setrlimit(RLIMIT_CORE, &some);
      if (::prctl(PR_GET_DUMPABLE) != 1) {
        ::_exit(10);
      }
      if (!crypto::harden_process().has_value()) {
        ::_exit(11);
      }
      rlimit core{};
      ::getrlimit(RLIMIT_CORE, &core);
      int code = 0;
      if (core.rlim_cur != 0 || core.rlim_max != 0) {
        code |= 1;
      }
      if (::prctl(PR_GET_DUMPABLE) != 0) {
        code |= 2;
      }
      ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
}
