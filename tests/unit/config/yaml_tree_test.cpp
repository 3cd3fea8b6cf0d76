#include "config/yaml_tree.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using config::YamlMark;
using config::YamlNode;
using config::YamlTree;
using config::YamlType;

YamlTree
parse_ok(const std::string& text)
{
  auto tree = YamlTree::parse(text);
  if (!tree) {
    FAIL("unexpected error: ", tree.error().message, " at ", tree.error().mark.line, ":",
         tree.error().mark.column);
  }
  return std::move(*tree);
}

std::string
mark_of(const YamlNode& n)
{
  return fmt::format("{}:{}", n.mark().line, n.mark().column);
}

std::string
type_name(YamlType t)
{
  switch (t) {
    case YamlType::undefined:
      return "undefined";
    case YamlType::null:
      return "null";
    case YamlType::scalar:
      return "scalar";
    case YamlType::sequence:
      return "sequence";
    case YamlType::map:
      return "map";
  }
  return "?";
}

std::string
type_name(YAML::NodeType::value t)
{
  switch (t) {
    case YAML::NodeType::Undefined:
      return "undefined";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "scalar";
    case YAML::NodeType::Sequence:
      return "sequence";
    case YAML::NodeType::Map:
      return "map";
  }
  return "?";
}

// Walks both trees side by side and records the first difference in type, scalar
// text, size or mark, with the path to it. Aliases make shared nodes (and may make
// cycles), so the walk stops after `budget` nodes.
class Differ
{
public:
  void compare(const YAML::Node& want, const YamlNode& got, const std::string& path)
  {
    if (!m_difference.empty() || ++m_visits > 100'000) {
      return;
    }
    const auto where = [&](const std::string& what, const std::string& a, const std::string& b) {
      m_difference =
        fmt::format("{}: {}: yaml-cpp {} vs tree {}", path.empty() ? "(root)" : path, what, a, b);
    };
    if (type_name(want.Type()) != type_name(got.type())) {
      where("type", type_name(want.Type()), type_name(got.type()));
      return;
    }
    const auto m = want.Mark();
    if (m.line != got.mark().line || m.column != got.mark().column) {
      where("mark", fmt::format("{}:{}", m.line, m.column), mark_of(got));
      return;
    }
    if (want.IsScalar() && want.Scalar() != got.scalar()) {
      where("scalar", '"' + want.Scalar() + '"', '"' + std::string(got.scalar()) + '"');
      return;
    }
    if (want.size() != got.size()) {
      where("size", std::to_string(want.size()), std::to_string(got.size()));
      return;
    }
    ++m_nodes;
    if (want.IsSequence()) {
      std::size_t i = 0;
      for (const auto item : got.items()) {
        compare(want[i], item, fmt::format("{}[{}]", path, i));
        ++i;
      }
    } else if (want.IsMap()) {
      auto it = want.begin();
      std::size_t i = 0;
      for (const auto& [key, value] : got.entries()) {
        const std::string p = fmt::format("{}{{{}}}", path, i);
        compare(it->first, key, p + ".key");
        compare(it->second, value, p + ".value");
        ++it;
        ++i;
      }
    }
  }

  [[nodiscard]] const std::string& difference() const { return m_difference; }
  [[nodiscard]] std::size_t nodes() const { return m_nodes; }

private:
  std::string m_difference;
  std::size_t m_visits = 0;
  std::size_t m_nodes = 0;
};

// Parses `text` with yaml-cpp and with YamlTree; returns "" when every node agrees.
std::string
difference(const std::string& text, std::size_t* nodes = nullptr)
{
  const auto want = YAML::LoadAll(text);
  auto got = YamlTree::parse(text);
  if (!got) {
    return "tree rejected the text: " + got.error().message;
  }
  if (want.size() != got->document_count()) {
    return fmt::format("documents: yaml-cpp {} vs tree {}", want.size(), got->document_count());
  }
  Differ d;
  for (std::size_t i = 0; i < want.size(); ++i) {
    d.compare(want[i], got->document(i), fmt::format("doc{}", i));
  }
  if (nodes != nullptr) {
    *nodes = d.nodes();
  }
  return d.difference();
}

std::string
read_source_file(const std::string& relative)
{
  const char* root = std::getenv("JTR_SOURCE_DIR");
  REQUIRE(root != nullptr);
  std::ifstream in(std::string(root) + "/" + relative, std::ios::binary);
  REQUIRE(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The shape tests/bench/plan-10k generates, at a small size.
std::string
bench_config(int users)
{
  const char* schedules[] = { "every 7d", "0 3 * * *", "*/30 9-17 * * mon-fri", "15 2 * * sun",
                              "0 0 1 * *" };
  const char* zones[] = { "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo",
                          "Australia/Sydney" };
  std::string y = "controllers:\n"
                  "  - {name: ci, url: https://jenkins.example.com/, admin_user: admin,\n"
                  "     admin_token_file: admin-token}\n"
                  "  - {name: ci2, url: https://jenkins2.example.com/, admin_user: admin,\n"
                  "     admin_token_file: admin-token}\n"
                  "recipients:\n"
                  "  deploy: deploy.pub\n"
                  "defaults: {jitter: 30m, lifetime: 45d}\n"
                  "users:\n";
  for (int i = 0; i < users; ++i) {
    y += fmt::format("  - user: svc-{0:05d}\n"
                     "    controller: {1}\n"
                     "    schedule: \"{2}\"\n"
                     "    timezone: {3}\n"
                     "    sinks:\n"
                     "      - {{type: file, path: out/svc-{0:05d}.json, recipients: [deploy]}}\n"
                     "      - {{type: exec, command: [hook, svc-{0:05d}], recipients: [deploy]}}\n"
                     "      - {{type: http, url: https://secrets.internal/v1/jenkins/svc-{0:05d},\n"
                     "         recipients: [deploy]}}\n",
                     i, i % 2 == 0 ? "ci" : "ci2", schedules[i % 5], zones[(i / 5) % 5]);
  }
  return y;
}

} // namespace

TEST_SUITE("config::YamlTree")
{
  TEST_CASE("marks are yaml-cpp's: 0-based, at the node's first character, columns in bytes")
  {
    const auto tree = parse_ok("a: 1\n"
                               "b:\n"
                               "  - x\n"
                               "  - {k: v}\n"
                               "c: [p, \"q\"]\n"
                               "\xc3\xa9t\xc3\xa9: \xc3\xa9\n"
                               "d: &anchor z\n");
    REQUIRE(tree.document_count() == 1);
    const auto root = tree.document(0);
    CHECK(mark_of(root) == "0:0");
    CHECK(mark_of(root["a"]) == "0:3");
    CHECK(mark_of(root["b"]) == "2:2");
    CHECK(mark_of(*root["b"].items().begin()) == "2:4");
    CHECK(mark_of(root["b"]["k"]) == "-1:-1"); // a sequence has no keys
    CHECK(mark_of(root["c"]) == "4:3");
    CHECK(root["c"].size() == 2);
    // "été" is three characters but five bytes: yaml-cpp counts bytes.
    CHECK(mark_of(root["\xc3\xa9t\xc3\xa9"]) == "5:7");
    CHECK(mark_of(root["d"]) == "6:3"); // the anchor, where yaml-cpp starts the node
    CHECK(root["d"].scalar() == "z");
    CHECK(!root["missing"]);
    CHECK(root["missing"].type() == YamlType::undefined);
    CHECK(root["missing"].mark().is_null());

    // Neither counts a byte order mark.
    const std::string bom = "\xef\xbb\xbf";
    CHECK(mark_of(parse_ok(bom + "b: x\n").document(0)["b"]) == "0:3");
    CHECK(difference(bom + "a: \xc3\xa9\nb: x\n") == "");
  }

  TEST_CASE("plain ~, null, Null, NULL and nothing are null; quoted or tagged they are strings")
  {
    const auto tree = parse_ok("a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: \"null\"\ng: '~'\n"
                               "h: !!str null\ni: nULL\nj: \"\"\nk: nullx\n");
    const auto root = tree.document(0);
    for (const char* key : { "a", "b", "c", "d", "e" }) {
      CAPTURE(key);
      CHECK(root[key].is_null());
      CHECK(root[key].scalar().empty());
    }
    CHECK(root["f"].is_scalar());
    CHECK(root["f"].scalar() == "null");
    CHECK(root["g"].scalar() == "~");
    CHECK(root["h"].scalar() == "null");
    CHECK(root["i"].scalar() == "nULL");
    CHECK(root["j"].is_scalar());
    CHECK(root["j"].scalar().empty());
    CHECK(root["k"].scalar() == "nullx");
  }

  TEST_CASE("an empty node is marked at the next token, as yaml-cpp marks it")
  {
    const auto tree = parse_ok("a:\n"
                               "  # a comment\n"
                               "b: 1\n"
                               "c:\n"
                               "  - \n"
                               "  - x\n"
                               "  -\n"
                               "d: {k: , m: 1}\n"
                               "e: &e\n"
                               "f:");
    const auto root = tree.document(0);
    CHECK(mark_of(root["a"]) == "2:0");
    const auto items = root["c"].items();
    auto it = items.begin();
    CHECK(mark_of(*it) == "5:2");
    ++it;
    CHECK((*it).scalar() == "x");
    ++it;
    CHECK((*it).is_null());
    CHECK(mark_of(*it) == "7:0");
    CHECK(mark_of(root["d"]["k"]) == "7:7"); // the ','
    CHECK(mark_of(root["e"]) == "8:3");      // anchored: at its anchor
    CHECK(mark_of(root["f"]) == "9:0");      // the end of the text, column 0 as yaml-cpp has it
    CHECK(difference("a:\n  # a comment\nb: 1\nc:\n  - \n  - x\n  -\nd: {k: , m: 1}\ne: &e\nf:") ==
          "");
  }

  TEST_CASE("an alias is the anchored node itself, shared and not copied")
  {
    const auto tree = parse_ok("base: &b {x: 1, y: [2, 3]}\n"
                               "copy: *b\n"
                               "list: [*b, *b]\n"
                               "again: &b other\n"
                               "late: *b\n");
    const auto root = tree.document(0);
    CHECK(root["copy"].is_map());
    CHECK(mark_of(root["copy"]) == mark_of(root["base"]));
    CHECK(root["copy"]["y"].size() == 2);
    for (const auto item : root["list"].items()) {
      CHECK(mark_of(item) == "0:6");
      CHECK(item["x"].scalar() == "1");
    }
    // A later anchor of the same name hides the first from then on.
    CHECK(root["late"].scalar() == "other");
    CHECK(mark_of(root["late"]) == "3:7");

    // A node that contains its own alias is a cycle, not an endless copy.
    const auto cyclic = parse_ok("&a [*a, x]\n");
    const auto outer = cyclic.document(0);
    const auto inner = *outer.items().begin();
    CHECK(inner.is_sequence());
    CHECK(mark_of(inner) == mark_of(outer));
    CHECK((*(*inner.items().begin()).items().begin()).size() == 2);
  }

  TEST_CASE("an alias to an anchor not defined before it is an error at the alias")
  {
    auto r = YamlTree::parse("a: 1\nb: *nowhere\n");
    REQUIRE(r.has_error());
    CHECK(r.error().message == "the referenced anchor is not defined");
    CHECK(r.error().mark == YamlMark{ 1, 3 });
    // Anchors do not cross documents.
    r = YamlTree::parse("a: &x 1\n---\nb: *x\n");
    REQUIRE(r.has_error());
    CHECK(r.error().mark == YamlMark{ 2, 3 });
  }

  TEST_CASE("flow and block styles give the same tree")
  {
    const auto block = parse_ok("k:\n  - a\n  - b: c\n    d: [e]\n");
    const auto flow = parse_ok("{k: [a, {b: c, d: [e]}]}\n");
    for (const auto& t : { &block, &flow }) {
      const auto k = t->document(0)["k"];
      REQUIRE(k.size() == 2);
      auto it = k.items().begin();
      CHECK((*it).scalar() == "a");
      ++it;
      CHECK((*it)["b"].scalar() == "c");
      CHECK((*(*it)["d"].items().begin()).scalar() == "e");
    }
    // Duplicate keys stay (the loader reports them); lookup finds the first.
    const auto dup = parse_ok("{a: 1, a: 2}");
    CHECK(dup.document(0).size() == 2);
    CHECK(dup.document(0)["a"].scalar() == "1");
    // A compact mapping inside a flow sequence starts at its key.
    const auto compact = parse_ok("- [a: 1, b]\n");
    CHECK(mark_of(*(*compact.document(0).items().begin()).items().begin()) == "0:3");
  }

  TEST_CASE("literal, folded, quoted and plain multi-line scalars")
  {
    const std::string text = "lit: |\n  one\n   two\n\n  three\n"
                             "keep: |+\n  x\n\n"
                             "strip: >-\n  folded\n  line\n\n  para\n"
                             "plain: a\n  b\n\n  c\n"
                             "dq: \"x\\ty\n  z\\u00e9\"\n"
                             "sq: 'it''s\n  here'\n"
                             "crlf: a\r\nnext: b\r\n";
    const auto tree = parse_ok(text);
    const auto root = tree.document(0);
    CHECK(root["lit"].scalar() == "one\n two\n\nthree\n");
    CHECK(root["keep"].scalar() == "x\n\n");
    CHECK(root["strip"].scalar() == "folded line\npara");
    CHECK(root["plain"].scalar() == "a b\nc");
    CHECK(root["dq"].scalar() == "x\ty z\xc3\xa9");
    CHECK(root["sq"].scalar() == "it's here");
    CHECK(root["crlf"].scalar() == "a");
    CHECK(mark_of(root["next"]) == "22:6");
    CHECK(difference(text) == "");
  }

  TEST_CASE("several documents, empty ones and an empty stream")
  {
    auto tree = parse_ok("a: 1\n---\nb: 2\n...\n---\n- c\n");
    REQUIRE(tree.document_count() == 3);
    CHECK(mark_of(tree.document(1)) == "2:0");
    CHECK(tree.document(2).is_sequence());

    CHECK(parse_ok("").document_count() == 0);
    CHECK(parse_ok("# only a comment\n").document_count() == 0);
    tree = parse_ok("---\n");
    REQUIRE(tree.document_count() == 1);
    CHECK(tree.document(0).is_null());
    tree = parse_ok("a: 1\n---\n");
    REQUIRE(tree.document_count() == 2);
    CHECK(mark_of(tree.document(1)) == "2:0");
    CHECK(difference("a: 1\n---\n") == "");
  }

  TEST_CASE("a syntax error both parsers see is worded and marked as yaml-cpp words it")
  {
    auto r = YamlTree::parse("key: [a, b\n");
    REQUIRE(r.has_error());
    CHECK(r.error().message == "end of sequence flow not found");
    CHECK(r.error().mark == YamlMark{ 1, 0 });
    r = YamlTree::parse("a: \"\\q\"\n");
    REQUIRE(r.has_error());
    CHECK(r.error().message == "unknown escape character: q");
    CHECK(r.error().mark == YamlMark{ 0, 6 });
  }

  TEST_CASE("a text only libyaml rejects gets libyaml's problem and mark")
  {
    // yaml-cpp 0.7 takes an unterminated quote, or a '-' without a space, as text.
    auto r = YamlTree::parse("a: 'x\n");
    REQUIRE(r.has_error());
    CHECK(r.error().message == "found unexpected end of stream (while scanning a quoted scalar)");
    CHECK(r.error().mark == YamlMark{ 1, 0 });
    r = YamlTree::parse("\xc3\xa9: [a,,b]\n");
    REQUIRE(r.has_error());
    CHECK(r.error().message == "did not find expected node content (while parsing a flow node)");
    CHECK(r.error().mark == YamlMark{ 0, 7 }); // bytes: é is two
    // libyaml's reader gives a byte offset, not a mark, for a control character.
    r = YamlTree::parse("a: 1\nb: x\x01y\n");
    REQUIRE(r.has_error());
    CHECK(r.error().message == "control characters are not allowed");
    CHECK(r.error().mark == YamlMark{ 1, 4 });
    r = YamlTree::parse("\xef\xbb\xbf"
                        "a: 1\nb: x\x01y\n");
    REQUIRE(r.has_error());
    CHECK(r.error().mark == YamlMark{ 1, 4 });
  }

  // Found by tests/fuzz (config_load): yaml-cpp's LoadAll looped for ever on a ','
  // at the top level, growing without bound (1.6 GB after 90 s); check-config hung.
  TEST_CASE("a ',' at the top level gets libyaml's error, not a yaml-cpp loop")
  {
    for (const char* text : { ",", ",\n", "# c\n,\n  time, x\n", "a: 1\n---\n,\n" }) {
      INFO(text);
      auto r = YamlTree::parse(text);
      REQUIRE(r.has_error());
      CHECK_FALSE(r.error().message.empty());
    }
    auto r = YamlTree::parse(",");
    CHECK(r.error().message == "did not find expected node content (while parsing a block node)");
    CHECK(r.error().mark == YamlMark{ 0, 0 });
  }

  TEST_CASE("a text only yaml-cpp rejects is a tree: a '? ' inside a flow scalar")
  {
    // libyaml follows the spec here: "s? vc.json" is one plain scalar.
    const std::string text = "{path: out/s? vc.json}\n";
    CHECK_THROWS_AS(YAML::LoadAll(text), YAML::Exception);
    const auto tree = parse_ok(text);
    CHECK(tree.document(0)["path"].scalar() == "out/s? vc.json");
  }

  TEST_CASE("collections nest at most k_max_yaml_depth deep, and deeper texts fail fast")
  {
    const auto nested = [](std::size_t depth) {
      return std::string(depth, '[') + std::string(depth, ']');
    };
    const auto tree = parse_ok(nested(config::k_max_yaml_depth));
    auto n = tree.document(0);
    std::size_t depth = 1;
    while (n.size() == 1) {
      n = *n.items().begin();
      ++depth;
    }
    CHECK(depth == config::k_max_yaml_depth);

    auto r = YamlTree::parse(nested(config::k_max_yaml_depth + 1));
    REQUIRE(r.has_error());
    CHECK(r.error().message ==
          "expected collections nested at most 100 deep, found deeper nesting");
    CHECK(r.error().mark == YamlMark{ 0, 100 });

    // Two million levels under a mapping: libyaml's scanner is O(depth) per token, so
    // without the limit this parse took hours; with it, it stops at level 101.
    r = YamlTree::parse("users: " + nested(2'000'000));
    REQUIRE(r.has_error());
    CHECK(r.error().mark == YamlMark{ 0, 7 + 99 });
  }

  TEST_CASE("every node of the shipped configs and the bench's shape agrees with yaml-cpp")
  {
    for (const char* file : { "conf/example.yaml", "conf/full.yaml" }) {
      CAPTURE(file);
      std::size_t nodes = 0;
      CHECK(difference(read_source_file(file), &nodes) == "");
      CHECK(nodes > 20);
    }
    std::size_t nodes = 0;
    CHECK(difference(bench_config(25), &nodes) == "");
    CHECK(nodes > 25 * 30);
    CHECK(difference("a: [1, 2]\n---\n? [x]\n: y\n\xc3\xa9\xc3\xa9: {z: &q 1, w: *q}\n"
                     "t: \ttabbed # comment\n") == "");
  }
}
