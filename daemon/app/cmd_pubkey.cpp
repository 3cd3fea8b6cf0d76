#include "app/args.hpp"
#include "app/commands.hpp"
#include "crypto/harden.hpp"
#include "crypto/private_key.hpp"
#include "crypto/secret_io.hpp"
#include "util/error.hpp"

#include <fmt/core.h>

#include <cstdio>
#include <unistd.h>

namespace app {

int
cmd_pubkey(const std::vector<std::string>& args)
{
  const Args a("pubkey", args, {}, {});
  if (!a.positional().empty()) {
    throw util::Fatal(util::exit_code::k_usage,
                      fmt::format("pubkey: unexpected argument \"{}\" (the private key is read "
                                  "from stdin)",
                                  a.positional()[0]));
  }
  if (auto ok = crypto::harden_process(); !ok) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("pubkey: {}", ok.error().message));
  }
  // A key file is 45 bytes; 4 KiB tells a wrong input from a key without reading it all.
  auto text = crypto::read_secret(STDIN_FILENO, 4096, "stdin");
  if (!text) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("pubkey: {}", text.error().message));
  }
  auto key = crypto::PrivateKey::from_text(text->view(), "stdin");
  if (!key) {
    throw util::Fatal(util::exit_code::k_failure, fmt::format("pubkey: {}", key.error().message));
  }
  std::fputs((key->public_key().to_base64() + "\n").c_str(), stdout);
  return util::exit_code::k_ok;
}

} // namespace app
