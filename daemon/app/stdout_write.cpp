#include "app/stdout_write.hpp"

#include "crypto/secret_io.hpp"

#include <unistd.h>

namespace app {

util::Result<void>
write_stdout(std::span<const unsigned char> text)
{
  return crypto::write_all(STDOUT_FILENO, text, "stdout");
}

util::Result<void>
write_stdout(std::string_view text)
{
  return write_stdout({ reinterpret_cast<const unsigned char*>(text.data()), text.size() });
}

} // namespace app
