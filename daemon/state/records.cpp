#include "state/records.hpp"

#include <array>
#include <utility>

namespace state {

namespace {

constexpr std::array k_attempt_states{
  std::pair{ AttemptState::planned, std::string_view("planned") },
  std::pair{ AttemptState::minted, std::string_view("minted") },
  std::pair{ AttemptState::verified, std::string_view("verified") },
  std::pair{ AttemptState::delivering, std::string_view("delivering") },
  std::pair{ AttemptState::committed, std::string_view("committed") },
  std::pair{ AttemptState::failed, std::string_view("failed") },
  std::pair{ AttemptState::abandoned, std::string_view("abandoned") },
};

constexpr std::array k_token_roles{
  std::pair{ TokenRole::pending, std::string_view("pending") },
  std::pair{ TokenRole::current, std::string_view("current") },
  std::pair{ TokenRole::previous, std::string_view("previous") },
  std::pair{ TokenRole::revoked, std::string_view("revoked") },
};

constexpr std::array k_sink_outcomes{
  std::pair{ SinkOutcome::ok, std::string_view("ok") },
  std::pair{ SinkOutcome::retryable, std::string_view("retryable") },
  std::pair{ SinkOutcome::rejected, std::string_view("rejected") },
};

constexpr std::array k_prune_reasons{
  std::pair{ PruneReason::retired, std::string_view("retired") },
  std::pair{ PruneReason::expired, std::string_view("expired") },
  std::pair{ PruneReason::failed_mint, std::string_view("failed_mint") },
};

template<typename Table, typename Enum>
std::string_view
name_of(const Table& table, Enum value)
{
  for (const auto& [v, name] : table) {
    if (v == value) {
      return name;
    }
  }
  return "?";
}

template<typename Table>
auto
parse(const Table& table, std::string_view text) -> std::optional<decltype(table[0].first)>
{
  for (const auto& [v, name] : table) {
    if (name == text) {
      return v;
    }
  }
  return std::nullopt;
}

} // namespace

std::string_view
to_string(AttemptState state)
{
  return name_of(k_attempt_states, state);
}

std::string_view
to_string(TokenRole role)
{
  return name_of(k_token_roles, role);
}

std::string_view
to_string(SinkOutcome outcome)
{
  return name_of(k_sink_outcomes, outcome);
}

std::string_view
to_string(PruneReason reason)
{
  return name_of(k_prune_reasons, reason);
}

std::optional<AttemptState>
parse_attempt_state(std::string_view text)
{
  return parse(k_attempt_states, text);
}

std::optional<TokenRole>
parse_token_role(std::string_view text)
{
  return parse(k_token_roles, text);
}

std::optional<SinkOutcome>
parse_sink_outcome(std::string_view text)
{
  return parse(k_sink_outcomes, text);
}

bool
is_open(AttemptState state)
{
  return state == AttemptState::planned || state == AttemptState::minted ||
         state == AttemptState::verified || state == AttemptState::delivering;
}

} // namespace state
