#include "app/args.hpp"
#include "app/commands.hpp"
#include "crypto/envelope.hpp"
#include "crypto/harden.hpp"
#include "crypto/private_key.hpp"
#include "crypto/secret_io.hpp"
#include "crypto/signing_key.hpp"
#include "util/error.hpp"
#include "util/quote.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <unistd.h>

namespace app {

namespace {

// Envelopes are a few hundred bytes per recipient; the bound keeps a wrong file harmless.
constexpr std::size_t k_max_envelope_bytes = 1024 * 1024;

[[noreturn]] void
decrypt_fail(const std::string& message)
{
  throw util::Fatal(util::exit_code::k_failure, fmt::format("decrypt: {}", message));
}

std::string
read_envelope(const std::string& path)
{
  const bool from_stdin = path == "-";
  const int fd = from_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    decrypt_fail(
      fmt::format("{}: cannot open: {}", util::escape(path, 1024), std::strerror(errno)));
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
      error = fmt::format("{}: cannot read: {}", util::escape(path, 1024), std::strerror(errno));
      break;
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > k_max_envelope_bytes) {
      error = fmt::format("{}: expected an envelope of at most 1 MiB, found more",
                          util::escape(path, 1024));
      break;
    }
  }
  if (!from_stdin) {
    ::close(fd);
  }
  if (!error.empty()) {
    decrypt_fail(error);
  }
  return text;
}

// A Jenkins API token as Jenkins makes them: `11` and 32 lowercase hex digits. Anything
// else is not printed: a forged envelope could carry terminal escapes or any text.
bool
is_jenkins_token(const crypto::SecretBytes& token)
{
  const auto v = token.view();
  if (v.size() != 34 || v[0] != '1' || v[1] != '1') {
    return false;
  }
  return std::all_of(v.begin() + 2, v.end(), [](unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

} // namespace

int
cmd_decrypt(const std::vector<std::string>& args)
{
  const Args a("decrypt", args, {}, { "key", "verify-key" });
  const auto key_path = a.option("key");
  if (!key_path || key_path->empty()) {
    throw util::Fatal(util::exit_code::k_usage, "decrypt: --key FILE is required");
  }
  const auto verify_path = a.option("verify-key");
  if (verify_path && verify_path->empty()) {
    throw util::Fatal(util::exit_code::k_usage, "decrypt: --verify-key needs a FILE");
  }
  if (a.positional().size() > 1) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("decrypt: unexpected argument {} (one envelope at most)",
                                  util::quote(a.positional()[1])));
  }
  // Before anything secret is in memory: no core dump may ever hold the token or the key.
  if (auto ok = crypto::harden_process(); !ok) {
    decrypt_fail(ok.error().message);
  }
  const std::string path = a.positional().empty() ? "-" : a.positional()[0];
  const std::string where = path == "-" ? "stdin" : util::escape(path, 1024);

  auto key = crypto::PrivateKey::load(*key_path);
  if (!key) {
    decrypt_fail(key.error().message);
  }
  std::optional<crypto::VerifyKey> verify_key;
  if (verify_path) {
    auto vk = crypto::VerifyKey::load(*verify_path);
    if (!vk) {
      decrypt_fail(vk.error().message);
    }
    verify_key = *vk;
  }
  const auto text = read_envelope(path);
  auto envelope = crypto::Envelope::parse(text, where);
  if (!envelope) {
    decrypt_fail(envelope.error().message);
  }
  // Before opening anything: an envelope that fails the check is not looked into.
  if (verify_key) {
    if (auto ok = envelope->verify(*verify_key, where); !ok) {
      decrypt_fail(ok.error().message);
    }
  }
  auto token = envelope->open(*key, where);
  if (!token) {
    decrypt_fail(token.error().message);
  }
  if (!is_jenkins_token(*token)) {
    decrypt_fail(fmt::format("{}: the sealed value is not a Jenkins API token (expected 11 and 32 "
                             "lowercase hex digits, found {} bytes that are not); not printed",
                             where, token->size()));
  }
  // Straight from locked memory to the descriptor: no stdio buffer keeps a copy; a failed
  // write (a full disk, /dev/full) is an error, never exit 0.
  const unsigned char newline = '\n';
  auto written = crypto::write_all(STDOUT_FILENO, token->view(), "stdout");
  if (written) {
    written = crypto::write_all(STDOUT_FILENO, { &newline, 1 }, "stdout");
  }
  if (!written) {
    decrypt_fail(written.error().message);
  }
  return util::exit_code::k_ok;
}

} // namespace app
