// The store's envelope check: its own facts (sink index, config hash), then the one
// validator of the envelope itself, handed in by whoever opened the store.
#include "state/store_detail.hpp"

#include <fmt/core.h>

namespace state::detail {

util::Result<void>
check_envelope(const EnvelopeCheck& check, const Envelope& env, const Attempt& attempt,
               const MintedToken& token)
{
  const auto where = fmt::format("attempt {} ({}): envelope for sink {}", attempt.seq,
                                 attempt.token_name, env.sink_index);
  const auto bad = [&](std::string_view what) {
    return util::make_error("envelope", fmt::format("{}: {}", where, what));
  };
  if (env.sink_index < 0) {
    return bad("negative sink index");
  }
  if (env.sink_hash.empty()) {
    return bad("no sink config hash");
  }
  if (!check) {
    return bad("the store was opened without an envelope check (Store::open(dir, "
               "crypto::check_envelope)): nothing is stored unchecked");
  }
  // Its messages never show the envelope's content: whatever it holds stays out of logs.
  if (auto ok = check(env.json, token.uuid, attempt.token_name); !ok) {
    return bad(ok.error().message);
  }
  return {};
}

} // namespace state::detail
