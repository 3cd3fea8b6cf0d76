// The admin tokens of admin_token_rotation (schema v5): the states of one rotation, one current
// per controller, the bootstrap, and what closing a row keeps.
#include "state/store.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using state::AdminToken;
using state::AdminTokenState;
using state::Store;
using state_test::TempDir;

namespace {

const auto k_t0 = state_test::t0();

std::optional<AdminToken>
row_of(Store& store, const std::string& controller, state::Seq seq)
{
  auto rows = store.admin_open(controller);
  REQUIRE_OK(rows);
  for (auto& r : *rows) {
    if (r.seq == seq) {
      return r;
    }
  }
  return std::nullopt;
}

} // namespace

TEST_SUITE("state::Store admin tokens")
{
  TEST_CASE("a rotation goes planned, minted, current; the old current and the bootstrap retire")
  {
    TempDir dir;
    auto store = Store::open(dir.path());
    REQUIRE_OK(store);
    REQUIRE_OK(store->admin_bootstrap("ci", "uuid-boot", "bootstrap", k_t0));
    // The same uuid twice is one row.
    REQUIRE_OK(store->admin_bootstrap("ci", "uuid-boot", "bootstrap", k_t0));

    auto seq = store->next_seq();
    REQUIRE_OK(seq);
    REQUIRE_OK(store->admin_planned("ci", *seq, "rotator-admin-x-000001-m", k_t0));
    CHECK_FALSE(store->admin_switch(*seq, k_t0, 1h, true).has_value()); // not minted yet
    REQUIRE_OK(store->admin_minted(*seq, "uuid-1", "c2VhbGVk"));
    CHECK_FALSE(store->admin_minted(*seq, "uuid-1", "c2VhbGVk").has_value()); // not planned
    auto none = store->admin_current("ci");
    REQUIRE_OK(none);
    CHECK_FALSE(none->has_value());

    REQUIRE_OK(store->admin_switch(*seq, k_t0 + 10s, 1h, true));
    auto cur = store->admin_current("ci");
    REQUIRE_OK(cur);
    REQUIRE(cur->has_value());
    CHECK((*cur)->uuid == "uuid-1");
    CHECK((*cur)->sealed == "c2VhbGVk"); // store: state keeps it
    CHECK((*cur)->switched == k_t0 + 10s);
    auto open = store->admin_open("ci");
    REQUIRE_OK(open);
    REQUIRE(open->size() == 2);
    CHECK(open->front().state == AdminTokenState::previous); // the bootstrap
    CHECK(open->front().retire_at == k_t0 + 10s + 1h);

    // The next switch, store: file: the new current keeps no sealed value, the old one
    // becomes previous without its value.
    auto seq2 = store->next_seq();
    REQUIRE_OK(seq2);
    REQUIRE_OK(store->admin_planned("ci", *seq2, "rotator-admin-x-000002-m", k_t0 + 1h));
    REQUIRE_OK(store->admin_minted(*seq2, "uuid-2", "c2VhbGVkMg=="));
    REQUIRE_OK(store->admin_switch(*seq2, k_t0 + 2h, 0s, false));
    auto first = row_of(*store, "ci", *seq);
    REQUIRE(first.has_value());
    CHECK(first->state == AdminTokenState::previous);
    CHECK_FALSE(first->sealed.has_value());
    auto second = row_of(*store, "ci", *seq2);
    REQUIRE(second.has_value());
    CHECK(second->state == AdminTokenState::current);
    CHECK_FALSE(second->sealed.has_value());

    // A current row cannot be closed; a previous one can, and leaves the open rows.
    CHECK_FALSE(store->admin_close(second->id, AdminTokenState::revoked, k_t0 + 3h).has_value());
    CHECK_FALSE(store->admin_close(first->id, AdminTokenState::current, k_t0 + 3h).has_value());
    REQUIRE_OK(store->admin_close(first->id, AdminTokenState::revoked, k_t0 + 3h));
    CHECK_FALSE(row_of(*store, "ci", *seq).has_value());
  }

  TEST_CASE("controllers are apart and a lost intent is abandoned")
  {
    TempDir dir;
    auto store = Store::open(dir.path());
    REQUIRE_OK(store);
    auto a = store->next_seq();
    auto b = store->next_seq();
    REQUIRE_OK(a);
    REQUIRE_OK(b);
    REQUIRE_OK(store->admin_planned("ci", *a, "n-a", k_t0));
    REQUIRE_OK(store->admin_planned("qa", *b, "n-b", k_t0));
    REQUIRE_OK(store->admin_minted(*b, "uuid-b", "c2VhbGVk"));
    REQUIRE_OK(store->admin_switch(*b, k_t0, 1h, true));
    auto ci = store->admin_current("ci");
    REQUIRE_OK(ci);
    CHECK_FALSE(ci->has_value());
    auto lost = row_of(*store, "ci", *a);
    REQUIRE(lost.has_value());
    REQUIRE_OK(store->admin_close(lost->id, AdminTokenState::abandoned, k_t0));
    auto open = store->admin_open("ci");
    REQUIRE_OK(open);
    CHECK(open->empty());
  }
}
