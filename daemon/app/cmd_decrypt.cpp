#include "app/args.hpp"
#include "app/commands.hpp"
#include "crypto/envelope.hpp"
#include "crypto/harden.hpp"
#include "crypto/private_key.hpp"
#include "crypto/secret_io.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace app {

namespace {

// Envelopes are a few hundred bytes per recipient; the bound keeps a wrong file harmless.
constexpr std::size_t k_max_envelope_bytes = 1024 * 1024;

[[noreturn]] void
fail(const std::string& message)
{
  throw util::Fatal(util::exit_code::k_failure, fmt::format("decrypt: {}", message));
}

std::string
read_envelope(const std::string& path)
{
  const bool from_stdin = path == "-";
  const int fd = from_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    fail(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  std::string text;
  std::string error;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      error = fmt::format("{}: cannot read: {}", path, std::strerror(errno));
      break;
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > k_max_envelope_bytes) {
      error = fmt::format("{}: expected an envelope of at most 1 MiB, found more", path);
      break;
    }
  }
  if (!from_stdin) {
    ::close(fd);
  }
  if (!error.empty()) {
    fail(error);
  }
  return text;
}

} // namespace

int
cmd_decrypt(const std::vector<std::string>& args)
{
  const Args a("decrypt", args, {}, { "key" });
  const auto key_path = a.option("key");
  if (!key_path || key_path->empty()) {
    throw util::Fatal(util::exit_code::k_usage, "decrypt: --key FILE is required");
  }
  if (a.positional().size() > 1) {
    throw util::Fatal(
      util::exit_code::k_usage,
      fmt::format("decrypt: unexpected argument \"{}\" (one envelope at most)", a.positional()[1]));
  }
  // Before anything secret is in memory: no core dump may ever hold the token or the key.
  if (auto ok = crypto::harden_process(); !ok) {
    fail(ok.error().message);
  }
  const std::string path = a.positional().empty() ? "-" : a.positional()[0];
  const std::string where = path == "-" ? "stdin" : path;

  auto key = crypto::PrivateKey::load(*key_path);
  if (!key) {
    fail(key.error().message);
  }
  const auto text = read_envelope(path);
  auto envelope = crypto::Envelope::parse(text, where);
  if (!envelope) {
    fail(envelope.error().message);
  }
  auto token = envelope->open(*key, where);
  if (!token) {
    fail(token.error().message);
  }
  // Straight from locked memory to the descriptor: no stdio buffer keeps a copy.
  const unsigned char newline = '\n';
  auto written = crypto::write_all(STDOUT_FILENO, token->view(), "stdout");
  if (written) {
    written = crypto::write_all(STDOUT_FILENO, { &newline, 1 }, "stdout");
  }
  if (!written) {
    fail(written.error().message);
  }
  return util::exit_code::k_ok;
}

} // namespace app
