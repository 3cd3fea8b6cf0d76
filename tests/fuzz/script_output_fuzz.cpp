// The decoders of script console answers (jenkins/script.cpp, jenkins/tokens.cpp): what
// Jenkins, a proxy or an impostor may send back. Input layout:
//   byte 0, bits 0-1: 0 decode_output, 1 read_mint_answer, 2 read_list_answer,
//                     3 read_revoke_answer
//           bits 2-4: the request's item count (0-7)
//           bit 5:    base64-encode the rest of each `JTR-RESULT:` line first, so the
//                     fuzzer mutates the JSON itself rather than its base64
//   the rest: the answer's body.
// Oracles: no crash or exception; a mint failure never quotes a token of the answer.
#include "crypto/base64.hpp"
#include "jenkins/script.hpp"
#include "jenkins/tokens.hpp"
#include "net/http_client.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Base64-encodes the payload of every JTR-RESULT line.
std::string
encode_results(std::string_view text)
{
  std::string out;
  while (!text.empty()) {
    const auto end = text.find('\n');
    auto line = text.substr(0, end);
    if (line.starts_with(jenkins::k_result_marker)) {
      out += jenkins::k_result_marker;
      out += crypto::to_base64(line.substr(jenkins::k_result_marker.size()));
    } else {
      out += line;
    }
    if (end == std::string_view::npos) {
      break;
    }
    out += '\n';
    text.remove_prefix(end + 1);
  }
  return out;
}

bool
is_lower_hex(char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// Every "11" + 32 lowercase hex run in `text`: what the mint decoder takes for a token.
std::vector<std::string_view>
token_like(std::string_view text)
{
  std::vector<std::string_view> found;
  for (std::size_t i = 0; i + 34 <= text.size(); ++i) {
    if (text[i] != '1' || text[i + 1] != '1') {
      continue;
    }
    std::size_t n = 2;
    while (n < 34 && is_lower_hex(text[i + n])) {
      ++n;
    }
    if (n == 34) {
      found.push_back(text.substr(i, 34));
    }
  }
  return found;
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size == 0) {
    return 0;
  }
  const unsigned mode = data[0];
  const std::size_t count = (mode >> 2) & 7;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((mode & 0x20) != 0) {
    text = encode_results(text);
  }
  const std::string controller = "ci";
  switch (mode & 3) {
    case 0: {
      (void)jenkins::decode_output(text, controller);
      break;
    }
    case 1: {
      net::Response answer;
      answer.status = 200;
      answer.body.assign(text.begin(), text.end());
      const auto r = jenkins::read_mint_answer(answer, count, controller);
      if (r) {
        if (r->items.size() != count) {
          std::abort();
        }
      } else if (r.error().kind != net::FailureKind::script_error) {
        // A stack trace is quoted as Jenkins wrote it (its first lines), and Jenkins
        // prints a throwable's line before its frames, never a token line: only a
        // crafted answer could put one there. Every other message quotes no token.
        for (const auto token : token_like(text)) {
          if (r.error().message.find(token.substr(2)) != std::string::npos) {
            std::abort();
          }
        }
      }
      break;
    }
    case 2: {
      std::vector<std::string> users;
      for (std::size_t i = 0; i < count; ++i) {
        users.push_back("user-" + std::to_string(i));
      }
      const auto r = jenkins::read_list_answer(text, users, controller);
      if (r && r->users.size() != count) {
        std::abort();
      }
      break;
    }
    default: {
      const auto r = jenkins::read_revoke_answer(text, count, controller);
      if (r && r->items.size() != count) {
        std::abort();
      }
      break;
    }
  }
  return 0;
}
