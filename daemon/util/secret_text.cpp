#include "util/secret_text.hpp"

#include <cstring>

namespace util {

void
wipe(void* data, std::size_t size) noexcept
{
  if (data != nullptr && size != 0) {
    ::explicit_bzero(data, size);
  }
}

} // namespace util
