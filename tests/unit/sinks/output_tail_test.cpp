#include "sinks/output_tail.hpp"

#include <doctest/doctest.h>

using sinks::OutputTail;

TEST_SUITE("sinks::OutputTail")
{
  TEST_CASE("keeps short output as one line")
  {
    OutputTail t;
    t.append("first line\nsecond\tline\x01\n");
    CHECK(t.text() == "first line | second line?");
    CHECK(t.total() == 24);
  }

  TEST_CASE("keeps only the last bytes and marks the cut")
  {
    OutputTail t(8);
    t.append("0123456789");
    t.append("ab");
    CHECK(t.text() == "…456789ab");
    OutputTail empty;
    CHECK(empty.empty());
    CHECK(empty.text().empty());
  }

  TEST_CASE("redacts long base64 runs but keeps paths, uuids and token names")
  {
    OutputTail t;
    const std::string ct = "q3Zl8B0v9Yx2N4mP7rT1wK6sD5fG8hJ0kL3zX9cV2bN7mQ4eR6tY1uI0oP5aS8d=";
    t.append("sent " + ct + " to /usr/local/lib/jenkins-token-rotator/hooks/publish-token-x " +
             "0b5c9a7e-6f1d-4c3e-9a51-2f8e7d6c5b4a rotator-5f2a9c1e-000042");
    const auto text = t.text();
    CHECK(text.find(ct) == std::string::npos);
    CHECK(text.find("[64 base64 characters redacted]") != std::string::npos);
    CHECK(text.find("/usr/local/lib/jenkins-token-rotator/hooks/publish-token-x") !=
          std::string::npos);
    CHECK(text.find("0b5c9a7e-6f1d-4c3e-9a51-2f8e7d6c5b4a") != std::string::npos);
    CHECK(text.find("rotator-5f2a9c1e-000042") != std::string::npos);
  }
}
