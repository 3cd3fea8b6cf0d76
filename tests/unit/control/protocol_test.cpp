#include "control/protocol.hpp"

#include <doctest/doctest.h>

#include <string>

using control::Command;
using control::parse_request;

namespace {

std::string
protocol_error(std::string_view line)
{
  auto r = parse_request(line);
  REQUIRE_MESSAGE(!r.has_value(), line);
  CHECK(r.error().kind == "protocol");
  return r.error().message;
}

} // namespace

TEST_SUITE("control::parse_request")
{
  TEST_CASE("a status request has no fields")
  {
    auto r = parse_request(R"({"v":1,"cmd":"status"})");
    REQUIRE(r.has_value());
    CHECK(r->cmd == Command::status);
    CHECK(*r == control::Request{});
  }

  TEST_CASE("rotate takes slots or all, and wait")
  {
    auto r = parse_request(R"({"v":1,"cmd":"rotate","slots":["svc-a","ci/svc-b"],"wait":true})");
    REQUIRE(r.has_value());
    CHECK(r->cmd == Command::rotate);
    CHECK(r->slots == std::vector<std::string>{ "svc-a", "ci/svc-b" });
    CHECK(r->wait);
    CHECK_FALSE(r->all);
    auto all = parse_request(R"({"cmd":"rotate","all":true,"v":1})");
    REQUIRE(all.has_value());
    CHECK(all->all);
    CHECK_FALSE(all->wait);
    CHECK(protocol_error(R"({"v":1,"cmd":"rotate"})") ==
          "rotate: expected slots (a non-empty array) or all: true");
    CHECK(protocol_error(R"({"v":1,"cmd":"rotate","slots":[]})") ==
          "rotate: expected slots (a non-empty array) or all: true");
    CHECK(protocol_error(R"({"v":1,"cmd":"rotate","slots":["a"],"all":true})") ==
          "rotate: expected slots or all, not both");
  }

  TEST_CASE("history, plan and prune read their own fields with their bounds")
  {
    auto h = parse_request(R"({"v":1,"cmd":"history","slot":"svc-a","limit":7})");
    REQUIRE(h.has_value());
    CHECK(h->slot == std::optional<std::string>("svc-a"));
    CHECK(h->limit == 7);
    auto h2 = parse_request(R"({"v":1,"cmd":"history"})");
    REQUIRE(h2.has_value());
    CHECK_FALSE(h2->slot);
    CHECK(h2->limit == 50);
    auto p = parse_request(R"({"v":1,"cmd":"plan","count":100})");
    REQUIRE(p.has_value());
    CHECK(p->count == 100);
    auto pr = parse_request(R"({"v":1,"cmd":"prune","wait":true})");
    REQUIRE(pr.has_value());
    CHECK(pr->cmd == Command::prune);
    CHECK(pr->wait);
    CHECK(protocol_error(R"({"v":1,"cmd":"history","limit":0})") ==
          "limit: expected an integer from 1 to 1000, found 0");
    CHECK(protocol_error(R"({"v":1,"cmd":"history","limit":1001})") ==
          "limit: expected an integer from 1 to 1000, found 1001");
    CHECK(protocol_error(R"({"v":1,"cmd":"history","limit":2.5})") ==
          "limit: expected an integer from 1 to 1000, found a number");
    CHECK(protocol_error(R"({"v":1,"cmd":"plan","count":101})") ==
          "count: expected an integer from 1 to 100, found 101");
    CHECK(protocol_error(R"({"v":1,"cmd":"plan","count":-99999999999999999999})") ==
          "count: expected an integer from 1 to 100, found a number");
  }

  TEST_CASE("a line that is not one JSON object is named as such")
  {
    CHECK(protocol_error("") == "not JSON");
    CHECK(protocol_error("status") == "not JSON");
    CHECK(protocol_error(R"({"v":1,"cmd":"status"} {})") == "not JSON");
    CHECK(protocol_error(R"({"v":1,"cmd":"status")") == "not JSON");
    CHECK(protocol_error("[1]") == "expected a JSON object, found an array");
    CHECK(protocol_error("42") == "expected a JSON object, found an integer");
    // Invalid UTF-8 inside a string is not JSON.
    CHECK(protocol_error("{\"v\":1,\"cmd\":\"st\xff\"}") == "not JSON");
  }

  TEST_CASE("the version is required and must be 1")
  {
    CHECK(protocol_error(R"({"cmd":"status"})") == "missing v");
    CHECK(protocol_error(R"({"v":2,"cmd":"status"})") == "unsupported v: 2");
    CHECK(protocol_error(R"({"v":"1","cmd":"status"})") == "v: expected 1, found a string");
    CHECK(protocol_error(R"({"v":1.0,"cmd":"status"})") == "v: expected 1, found a number");
  }

  TEST_CASE("unknown commands and fields are named")
  {
    CHECK(protocol_error(R"({"v":1})") == "missing cmd");
    CHECK(protocol_error(R"({"v":1,"cmd":7})") == "cmd: expected a string, found an integer");
    CHECK(protocol_error(R"({"v":1,"cmd":"explode"})") == "unknown command: explode");
    CHECK(protocol_error(R"({"v":1,"cmd":"status","wait":true})") == "unknown field: wait");
    CHECK(protocol_error(R"({"v":1,"cmd":"rotate","all":true,"slot":"x"})") ==
          "unknown field: slot");
    CHECK(protocol_error(R"({"v":1,"cmd":"reload","force":1})") == "unknown field: force");
    // A long word is cut in the answer.
    const std::string long_cmd(1000, 'x');
    const auto message = protocol_error(R"({"v":1,"cmd":")" + long_cmd + R"("})");
    CHECK(message.size() < 100);
    CHECK(message.starts_with("unknown command: xxxx"));
  }

  TEST_CASE("a long word is cut on a character boundary: the answer stays valid UTF-8")
  {
    // "€" is 3 bytes: 64 bytes end inside the 22nd one. The answer once carried the
    // broken byte pair, which format_answer turned into U+FFFD (control_protocol fuzzer).
    std::string euros;
    for (int i = 0; i < 30; ++i) {
      euros += "\xe2\x82\xac";
    }
    const auto message = protocol_error(R"({"v":1,"cmd":")" + euros + R"("})");
    CHECK(message == "unknown command: " + euros.substr(0, 63) + "…");
    const auto field = protocol_error(R"({"v":1,"cmd":"status",")" + euros + R"(":1})");
    CHECK(field == "unknown field: " + euros.substr(0, 63) + "…");
    // A word of exactly 64 bytes is whole; 65 ASCII bytes are cut at 64.
    const std::string a64(64, 'a');
    CHECK(protocol_error(R"({"v":1,"cmd":")" + a64 + R"("})") == "unknown command: " + a64);
    CHECK(protocol_error(R"({"v":1,"cmd":")" + a64 + R"(b"})") == "unknown command: " + a64 + "…");
  }

  TEST_CASE("wrong types are named with the field")
  {
    CHECK(protocol_error(R"({"v":1,"cmd":"rotate","slots":"svc-a"})") ==
          "slots: expected an array of strings, found a string");
    CHECK(protocol_error(R"({"v":1,"cmd":"rotate","slots":["a",3]})") ==
          "slots[1]: expected a non-empty string, found an integer");
    CHECK(protocol_error(R"({"v":1,"cmd":"rotate","slots":[""]})") ==
          "slots[0]: expected a non-empty string, found an empty string");
    CHECK(protocol_error(R"({"v":1,"cmd":"rotate","all":"yes"})") ==
          "all: expected true or false, found a string");
    CHECK(protocol_error(R"({"v":1,"cmd":"prune","wait":null})") ==
          "wait: expected true or false, found null");
    CHECK(protocol_error(R"({"v":1,"cmd":"history","slot":{}})") ==
          "slot: expected a non-empty string, found an object");
  }

  TEST_CASE("a request over 64 KiB is refused before it is parsed")
  {
    std::string line = R"({"v":1,"cmd":"rotate","slots":[")";
    line += std::string(control::k_max_request, 'a');
    line += R"("]})";
    CHECK(protocol_error(line) == "request over 65536 bytes");
    // Exactly 64 KiB is still a request.
    std::string fits = R"({"v":1,"cmd":"rotate","slots":[")";
    fits += std::string(control::k_max_request - fits.size() - 3, 'a') + R"("]})";
    REQUIRE(fits.size() == control::k_max_request);
    CHECK(parse_request(fits).has_value());
  }
}

TEST_SUITE("control::format_request")
{
  TEST_CASE("every request reads back as itself")
  {
    control::Request rotate;
    rotate.cmd = Command::rotate;
    rotate.slots = { "svc-a", "ci/\"quoted\"" };
    rotate.wait = true;
    control::Request all;
    all.cmd = Command::rotate;
    all.all = true;
    control::Request history;
    history.cmd = Command::history;
    history.slot = "svc-a";
    history.limit = 3;
    control::Request plan;
    plan.cmd = Command::plan;
    plan.count = 9;
    control::Request prune;
    prune.cmd = Command::prune;
    prune.wait = true;
    control::Request reload;
    reload.cmd = Command::reload;
    for (const auto& r : { control::Request{}, rotate, all, history, plan, prune, reload }) {
      const auto line = control::format_request(r);
      REQUIRE(line.ends_with('\n'));
      CHECK(line.find('\n') == line.size() - 1);
      auto back = parse_request(std::string_view(line).substr(0, line.size() - 1));
      REQUIRE_MESSAGE(back.has_value(), line);
      CHECK(*back == r);
    }
    CHECK(
      control::format_request(rotate) ==
      "{\"v\":1,\"cmd\":\"rotate\",\"slots\":[\"svc-a\",\"ci/\\\"quoted\\\"\"],\"wait\":true}\n");
  }
}

TEST_SUITE("control::format_answer")
{
  TEST_CASE("the refusal line is exactly the documented one")
  {
    CHECK(control::format_answer(control::error_answer("permission denied")) ==
          "{\"v\":1,\"ok\":false,\"error\":\"permission denied\"}\n");
  }

  TEST_CASE("fields are merged after v and ok, and cannot override them")
  {
    control::Answer a;
    a.fields = { { "queued", { "ci/svc-a" } }, { "ok", false }, { "v", 9 }, { "error", "x" } };
    CHECK(control::format_answer(a) == "{\"v\":1,\"ok\":true,\"queued\":[\"ci/svc-a\"]}\n");
  }

  TEST_CASE("an answer is one line whatever its strings hold")
  {
    control::Answer a;
    a.ok = false;
    a.error = "line1\nline2 \xff";
    a.fields = { { "detail", "a\nb" } };
    const auto line = control::format_answer(a);
    CHECK(line.find('\n') == line.size() - 1);
    auto back = control::parse_answer(std::string_view(line).substr(0, line.size() - 1));
    REQUIRE(back.has_value());
    CHECK_FALSE(back->ok);
    CHECK(back->error == "line1\nline2 \xef\xbf\xbd");
    CHECK(back->fields["detail"] == "a\nb");
  }
}

TEST_SUITE("control::parse_answer")
{
  TEST_CASE("an answer that is not ours is an error")
  {
    CHECK_FALSE(control::parse_answer("hello").has_value());
    CHECK_FALSE(control::parse_answer(R"({"ok":true})").has_value());
    CHECK_FALSE(control::parse_answer(R"({"v":2,"ok":true})").has_value());
    CHECK_FALSE(control::parse_answer(R"({"v":1})").has_value());
    auto a = control::parse_answer(R"({"v":1,"ok":true,"queued":true})");
    REQUIRE(a.has_value());
    CHECK(a->ok);
    CHECK(a->fields == nlohmann::json{ { "queued", true } });
  }
}
