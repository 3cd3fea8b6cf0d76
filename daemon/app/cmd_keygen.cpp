#include "app/args.hpp"
#include "app/commands.hpp"
#include "app/stdout_write.hpp"
#include "crypto/harden.hpp"
#include "crypto/private_key.hpp"
#include "crypto/secret_io.hpp"
#include "crypto/signing_key.hpp"
#include "util/error.hpp"
#include "util/quote.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace app {

namespace {

[[noreturn]] void
keygen_fail(const std::string& message)
{
  throw util::Fatal(util::exit_code::k_failure, fmt::format("keygen: {}", message));
}

// Writes the private key text and a newline to a new file `path` (0600, never replacing
// anything, never through a symlink) and fsyncs it. On failure nothing is left behind.
void
write_private(const std::string& path, std::span<const unsigned char> text)
{
  // O_EXCL: never replace an existing key (a consumer may still need it), and never follow a
  // symlink someone planted at the path. 0600 before umask, which can only make it stricter.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int err = errno;
    keygen_fail(err == EEXIST ? fmt::format("{} already exists; refusing to overwrite a key "
                                            "(move it away or choose another --out)",
                                            path)
                              : fmt::format("cannot create {}: {}", path, std::strerror(err)));
  }
  const unsigned char newline = '\n';
  auto written = crypto::write_all(fd, text, path);
  if (written) {
    written = crypto::write_all(fd, { &newline, 1 }, path);
  }
  if (written && ::fsync(fd) != 0) {
    written = util::make_error("io", fmt::format("{}: fsync: {}", path, std::strerror(errno)));
  }
  if (::close(fd) != 0 && written) {
    written = util::make_error("io", fmt::format("{}: close: {}", path, std::strerror(errno)));
  }
  if (!written) {
    // We created the file (O_EXCL), so removing a half-written key is ours to do.
    ::unlink(path.c_str());
    keygen_fail(written.error().message);
  }
}

// Prints the public half. If stdout takes it not (a full disk, /dev/full, a closed pipe),
// the private key we just made is removed: a key pair whose public half nobody saw is of
// no use, and a later `keygen` to the same path would otherwise refuse to run.
void
print_public(const std::string& path, const std::string& public_text)
{
  auto printed = write_stdout(public_text + "\n");
  if (!printed) {
    ::unlink(path.c_str());
    keygen_fail(fmt::format("{}; removed {}, whose public key could not be printed",
                            printed.error().message, path));
  }
}

} // namespace

int
cmd_keygen(const std::vector<std::string>& args)
{
  const Args a("keygen", args, { "sign" }, { "out" });
  const auto out = a.option("out");
  if (!out || out->empty()) {
    throw util::Fatal(util::exit_code::k_usage, "keygen: --out FILE is required");
  }
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage, fmt::format("keygen: unexpected argument {}",
                                                            util::quote(a.positional()[0])));
  }
  if (auto ok = crypto::harden_process(); !ok) {
    keygen_fail(ok.error().message);
  }
  if (a.flag("sign")) {
    auto key = crypto::SigningKey::generate();
    if (!key) {
      keygen_fail(key.error().message);
    }
    auto text = key->to_text();
    if (!text) {
      keygen_fail(text.error().message);
    }
    write_private(*out, text->view());
    print_public(*out, key->verify_key().to_text());
    return util::exit_code::k_ok;
  }
  auto key = crypto::PrivateKey::generate();
  if (!key) {
    keygen_fail(key.error().message);
  }
  auto text = key->to_base64();
  if (!text) {
    keygen_fail(text.error().message);
  }
  write_private(*out, text->view());
  print_public(*out, key->public_key().to_base64());
  return util::exit_code::k_ok;
}

} // namespace app
