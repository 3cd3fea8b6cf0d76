#include "app/args.hpp"
#include "app/commands.hpp"
#include "crypto/harden.hpp"
#include "crypto/private_key.hpp"
#include "crypto/secret_io.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace app {

int
cmd_keygen(const std::vector<std::string>& args)
{
  const Args a("keygen", args, {}, { "out" });
  const auto out = a.option("out");
  if (!out || out->empty()) {
    throw util::Fatal(util::exit_code::k_usage, "keygen: --out FILE is required");
  }
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("keygen: unexpected argument \"{}\"", a.positional()[0]));
  }
  if (auto ok = crypto::harden_process(); !ok) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("keygen: {}", ok.error().message));
  }
  auto key = crypto::PrivateKey::generate();
  if (!key) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("keygen: {}", key.error().message));
  }
  auto text = key->to_base64();
  if (!text) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("keygen: {}", text.error().message));
  }
  // O_EXCL: never replace an existing key (a consumer may still need it), and never follow a
  // symlink someone planted at the path. 0600 before umask, which can only make it stricter.
  const int fd = ::open(out->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int err = errno;
    throw util::Fatal(util::exit_code::k_failure,
                      err == EEXIST
                        ? fmt::format("keygen: {} already exists; refusing to overwrite a key "
                                      "(move it away or choose another --out)",
                                      *out)
                        : fmt::format("keygen: cannot create {}: {}", *out, std::strerror(err)));
  }
  const unsigned char newline = '\n';
  auto written = crypto::write_all(fd, text->view(), *out);
  if (written) {
    written = crypto::write_all(fd, { &newline, 1 }, *out);
  }
  if (written && ::fsync(fd) != 0) {
    written = util::make_error("io", fmt::format("{}: fsync: {}", *out, std::strerror(errno)));
  }
  if (::close(fd) != 0 && written) {
    written = util::make_error("io", fmt::format("{}: close: {}", *out, std::strerror(errno)));
  }
  if (!written) {
    // We created the file (O_EXCL), so removing a half-written key is ours to do.
    ::unlink(out->c_str());
    throw util::Fatal(util::exit_code::k_failure,
                      fmt::format("keygen: {}", written.error().message));
  }
  std::fputs((key->public_key().to_base64() + "\n").c_str(), stdout);
  return util::exit_code::k_ok;
}

} // namespace app
