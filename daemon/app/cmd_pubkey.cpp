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

#include <algorithm>
#include <string>
#include <unistd.h>

namespace app {

int
cmd_pubkey(const std::vector<std::string>& args)
{
  const Args a("pubkey", args, {}, {});
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("pubkey: unexpected argument {} (the private key is read "
                                  "from stdin)",
                                  util::quote(a.positional()[0])));
  }
  if (auto ok = crypto::harden_process(); !ok) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("pubkey: {}", ok.error().message));
  }
  // A key file is 45 bytes; 4 KiB tells a wrong input from a key without reading it all.
  auto text = crypto::read_secret(STDIN_FILENO, 4096, "stdin");
  if (!text) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("pubkey: {}", text.error().message));
  }
  std::string public_text;
  constexpr std::string_view k_sign = crypto::SigningKey::k_prefix;
  if (text->size() >= k_sign.size() &&
      std::equal(k_sign.begin(), k_sign.end(), text->view().begin())) {
    auto key = crypto::SigningKey::from_text(text->view(), "stdin");
    if (!key) {
      throw util::Fatal(util::exit_code::k_failure, fmt::format("pubkey: {}", key.error().message));
    }
    public_text = key->verify_key().to_text();
  } else {
    auto key = crypto::PrivateKey::from_text(text->view(), "stdin");
    if (!key) {
      throw util::Fatal(util::exit_code::k_failure, fmt::format("pubkey: {}", key.error().message));
    }
    public_text = key->public_key().to_base64();
  }
  // write(2), checked: `pubkey < k > /dev/full` must not exit 0 (issue 19 #9).
  if (auto printed = write_stdout(public_text + "\n"); !printed) {
    throw util::Fatal(util::exit_code::k_failure,
                      fmt::format("pubkey: {}", printed.error().message));
  }
  return util::exit_code::k_ok;
}

} // namespace app
