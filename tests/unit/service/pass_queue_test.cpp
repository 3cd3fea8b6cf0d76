#include "service/pass_queue.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using service::Ask;
using service::PassQueue;
using K = Ask::Kind;

namespace {

Ask
rotate(std::set<std::string> slots, std::optional<service::WaiterId> w = std::nullopt)
{
  return Ask{ K::rotate, false, std::move(slots), w };
}

Ask
scheduled(std::set<std::string> slots)
{
  return Ask{ K::rotate, false, std::move(slots), std::nullopt, true };
}

} // namespace

TEST_SUITE("service::PassQueue")
{
  TEST_CASE("one pass at a time per lane; lanes are independent")
  {
    PassQueue q;
    q.add("ci", rotate({ "ci/a" }));
    q.add("qa", rotate({ "qa/b" }));
    auto ci = q.start("ci");
    auto qa = q.start("qa");
    REQUIRE(ci);
    REQUIRE(qa);
    CHECK(ci->controller == "ci");
    CHECK(ci->slots == std::vector<std::string>{ "ci/a" });
    CHECK(qa->slots == std::vector<std::string>{ "qa/b" });
    q.add("ci", rotate({ "ci/c" }));
    CHECK_FALSE(q.start("ci")); // busy
    CHECK(q.running("ci"));
    q.finish("ci");
    auto next = q.start("ci");
    REQUIRE(next);
    CHECK(next->slots == std::vector<std::string>{ "ci/c" });
    CHECK(q.running("qa")); // untouched by ci's passes
  }

  TEST_CASE("a slot already queued is queued once; requests merge into one pass")
  {
    PassQueue q;
    q.add("ci", rotate({ "ci/a", "ci/b" }));
    q.add("ci", rotate({ "ci/b", "ci/c" }));
    q.add("ci", rotate({ "ci/a" }));
    auto p = q.start("ci");
    REQUIRE(p);
    CHECK(p->kind == rotation::PassKind::rotate);
    CHECK(p->slots == std::vector<std::string>{ "ci/a", "ci/b", "ci/c" });
    q.finish("ci");
    CHECK_FALSE(q.start("ci"));
  }

  TEST_CASE("a request for a slot in flight waits for that attempt instead of queueing")
  {
    PassQueue q;
    q.add("ci", rotate({ "ci/a" }));
    REQUIRE(q.start("ci"));
    CHECK(q.has("ci", "ci/a"));
    CHECK(q.add("ci", rotate({ "ci/a" }, 7)) == 1); // waits for the running pass
    CHECK_FALSE(q.pending("ci"));
    CHECK(q.add("ci", rotate({ "ci/a", "ci/b" }, 8)) == 2); // running + a pending one
    const auto served = q.finish("ci");
    CHECK(served == std::vector<service::WaiterId>{ 7, 8 });
    auto p = q.start("ci");
    REQUIRE(p);
    CHECK(p->slots == std::vector<std::string>{ "ci/b" });
    CHECK(q.finish("ci") == std::vector<service::WaiterId>{ 8 });
  }

  TEST_CASE("a forced pass in flight covers every slot of the lane")
  {
    PassQueue q;
    q.add("ci", Ask{ K::rotate, true, {}, 1 });
    auto p = q.start("ci");
    REQUIRE(p);
    CHECK(p->force);
    CHECK(q.has("ci", "ci/anything"));
    CHECK(q.add("ci", rotate({ "ci/x" }, 2)) == 1);
    CHECK(q.add("ci", Ask{ K::rotate, true, {}, 3 }) == 1);
    CHECK_FALSE(q.pending("ci"));
    CHECK(q.finish("ci") == std::vector<service::WaiterId>{ 1, 2, 3 });
  }

  TEST_CASE("order: resume first, then rotations, then a full pass that also prunes")
  {
    PassQueue q;
    q.add("ci", Ask{ K::prune, false, {}, 1 });
    q.add("ci", Ask{ K::full, false, {}, 2 });
    q.add("ci", rotate({ "ci/a" }, 3));
    q.add("ci", Ask{ K::resume, false, {}, std::nullopt });
    auto p = q.start("ci");
    REQUIRE(p);
    CHECK(p->kind == rotation::PassKind::rotate);
    CHECK(p->slots.empty()); // resume only
    CHECK(q.finish("ci").empty());
    p = q.start("ci");
    REQUIRE(p);
    CHECK(p->slots == std::vector<std::string>{ "ci/a" });
    CHECK(q.finish("ci") == std::vector<service::WaiterId>{ 3 });
    p = q.start("ci");
    REQUIRE(p);
    CHECK(p->kind == rotation::PassKind::full);
    CHECK(q.finish("ci") == std::vector<service::WaiterId>{ 1, 2 });
    CHECK_FALSE(q.start("ci")); // the prune was merged into the full pass
  }

  TEST_CASE("scheduled asks rotate only if still due; an explicit ask for the slot forces it")
  {
    PassQueue q;
    q.add("ci", scheduled({ "ci/a", "ci/b" }));
    CHECK(q.has("ci", "ci/a"));
    q.add("ci", rotate({ "ci/b" }, 1)); // explicit: forces ci/b, absorbs its scheduled ask
    auto p = q.start("ci");
    REQUIRE(p);
    CHECK(p->kind == rotation::PassKind::rotate);
    CHECK(p->slots == std::vector<std::string>{ "ci/b" });
    CHECK(p->if_due == std::vector<std::string>{ "ci/a" });
    CHECK(q.has("ci", "ci/a"));
    q.add("ci", scheduled({ "ci/a", "ci/b" })); // in flight: not queued again
    CHECK_FALSE(q.pending("ci"));
    // An explicit ask for a slot in flight only "if due" is queued (that pass may skip it).
    CHECK(q.add("ci", rotate({ "ci/a" }, 2)) == 1);
    CHECK(q.finish("ci") == std::vector<service::WaiterId>{ 1 });
    p = q.start("ci");
    REQUIRE(p);
    CHECK(p->slots == std::vector<std::string>{ "ci/a" });
    CHECK(p->if_due.empty());
    CHECK(q.finish("ci") == std::vector<service::WaiterId>{ 2 });
  }

  TEST_CASE("a forced ask covers the scheduled ones; a scheduled ask never forces")
  {
    PassQueue q;
    q.add("ci", scheduled({ "ci/a" }));
    q.add("ci", Ask{ K::rotate, true, {}, 1 });
    auto p = q.start("ci");
    REQUIRE(p);
    CHECK(p->force);
    CHECK(p->if_due.empty());
    q.add("ci", scheduled({ "ci/a" })); // the forced pass in flight covers it
    CHECK_FALSE(q.pending("ci"));
    q.finish("ci");
    // Queued while a full pass runs (that pass may rotate it): still only "if due".
    q.add("ci", Ask{ K::full, false, {}, std::nullopt });
    REQUIRE(q.start("ci"));
    q.add("ci", scheduled({ "ci/a" }));
    q.finish("ci");
    p = q.start("ci");
    REQUIRE(p);
    CHECK_FALSE(p->force);
    CHECK(p->slots.empty());
    CHECK(p->if_due == std::vector<std::string>{ "ci/a" });
  }

  TEST_CASE("stopping drops what is pending and hands back its waiters")
  {
    PassQueue q;
    q.add("ci", rotate({ "ci/a" }, 1));
    REQUIRE(q.start("ci"));
    q.add("ci", rotate({ "ci/b" }, 2));
    q.add("qa", Ask{ K::prune, false, {}, 3 });
    auto dropped = q.drop_pending();
    std::sort(dropped.begin(), dropped.end());
    CHECK(dropped == std::vector<service::WaiterId>{ 2, 3 });
    CHECK_FALSE(q.all_idle());
    CHECK(q.finish("ci") == std::vector<service::WaiterId>{ 1 });
    CHECK(q.all_idle());
    CHECK_FALSE(q.start("ci"));
    CHECK_FALSE(q.start("qa"));
  }
}
