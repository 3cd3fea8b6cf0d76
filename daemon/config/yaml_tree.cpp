#include "config/yaml_tree.hpp"

#include <fmt/core.h>
#include <yaml-cpp/anchor.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <yaml.h>

namespace config {

namespace {

// Takes yaml-cpp's events and keeps none: only its exceptions are wanted.
class IgnoreEvents : public YAML::EventHandler
{
public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override
  {
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override
  {
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override
  {
  }
  void OnMapEnd() override {}
};

// yaml-cpp's wording of the syntax error in `text`, or nullopt when it finds none.
// yaml-cpp 0.7 never gets past a ',' at the top level: YAML::LoadAll("," ) loops for
// ever, keeping an empty document per turn until memory runs out (found by
// tests/fuzz/config_load). So the documents read are bounded by those the text can
// hold: each one after the first starts at a "---" or follows a "...".
std::optional<YamlError>
yaml_cpp_error(std::string_view text)
{
  std::size_t markers = 0;
  for (const std::string_view m : { "---", "..." }) {
    for (auto at = text.find(m); at != std::string_view::npos; at = text.find(m, at + 1)) {
      ++markers;
    }
  }
  std::istringstream in{ std::string(text) };
  IgnoreEvents ignore;
  try {
    YAML::Parser parser(in);
    for (std::size_t i = 0; i <= markers + 1 && parser.HandleNextDocument(ignore); ++i) {
    }
  } catch (const YAML::Exception& e) {
    return YamlError{ e.msg,
                      e.mark.is_null() ? YamlMark{} : YamlMark{ e.mark.line, e.mark.column } };
  }
  return std::nullopt;
}

} // namespace

YamlType
YamlNode::type() const
{
  return m_tree == nullptr ? YamlType::undefined : m_tree->m_nodes[m_index].type;
}

std::string_view
YamlNode::scalar() const
{
  if (type() != YamlType::scalar) {
    return {};
  }
  const auto& n = m_tree->m_nodes[m_index];
  return std::string_view(m_tree->m_scalars).substr(n.first, n.count);
}

YamlMark
YamlNode::mark() const
{
  if (m_tree == nullptr) {
    return {};
  }
  const auto& n = m_tree->m_nodes[m_index];
  return { static_cast<int>(n.line), static_cast<int>(n.column) };
}

std::size_t
YamlNode::size() const
{
  switch (type()) {
    case YamlType::sequence:
      return m_tree->m_nodes[m_index].count;
    case YamlType::map:
      return m_tree->m_nodes[m_index].count / 2;
    default:
      return 0;
  }
}

YamlNode
YamlNode::operator[](std::string_view key) const
{
  for (const auto [k, v] : entries()) {
    if (k.is_scalar() && k.scalar() == key) {
      return v;
    }
  }
  return {};
}

YamlNode::Range<YamlNode::ItemIterator>
YamlNode::items() const
{
  if (type() != YamlType::sequence) {
    return { { nullptr, nullptr }, { nullptr, nullptr } };
  }
  const auto& n = m_tree->m_nodes[m_index];
  const auto* first = m_tree->m_links.data() + n.first;
  return { { m_tree, first }, { m_tree, first + n.count } };
}

YamlNode::Range<YamlNode::EntryIterator>
YamlNode::entries() const
{
  if (type() != YamlType::map) {
    return { { nullptr, nullptr }, { nullptr, nullptr } };
  }
  const auto& n = m_tree->m_nodes[m_index];
  const auto* first = m_tree->m_links.data() + n.first;
  return { { m_tree, first }, { m_tree, first + n.count } };
}

namespace {

// yaml-cpp's IsNullString: the plain scalars that stand for null.
bool
is_null_text(std::string_view s)
{
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// libyaml counts marks in characters over all its line breaks; yaml-cpp, whose marks
// the messages and tests use, counts bytes and only '\n'. This turns libyaml's character
// index into yaml-cpp's line and column. Marks arrive in document order, so it walks
// forward from the last one (and starts over in the rare case one goes back).
class Positions
{
public:
  // libyaml's indices and yaml-cpp's columns both leave out a leading byte order mark.
  explicit Positions(std::string_view text)
    : m_skipped(text.starts_with(k_bom) ? k_bom.size() : 0)
    , m_text(text.substr(m_skipped))
    , m_ascii(std::all_of(text.begin(), text.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
  {
  }

  // The byte offset of character `index`.
  [[nodiscard]] std::size_t offset(std::size_t index)
  {
    if (m_ascii) {
      return std::min(index, m_text.size());
    }
    if (index < m_char) {
      m_char = 0;
      m_byte = 0;
    }
    while (m_char < index && m_byte < m_text.size()) {
      // Skip the continuation bytes of one UTF-8 character.
      ++m_byte;
      while (m_byte < m_text.size() &&
             (static_cast<unsigned char>(m_text[m_byte]) & 0xC0) == 0x80) {
        ++m_byte;
      }
      ++m_char;
    }
    return m_byte;
  }

  // yaml-cpp's mark of byte offset `offset`.
  [[nodiscard]] YamlMark mark_at(std::size_t offset)
  {
    if (offset < m_counted) {
      m_counted = 0;
      m_line = 0;
      m_line_start = 0;
    }
    while (m_counted < offset) {
      const void* nl = std::memchr(m_text.data() + m_counted, '\n', offset - m_counted);
      if (nl == nullptr) {
        break;
      }
      ++m_line;
      m_line_start = static_cast<std::size_t>(static_cast<const char*>(nl) - m_text.data()) + 1;
      m_counted = m_line_start;
    }
    m_counted = offset;
    return { static_cast<int>(m_line), static_cast<int>(offset - m_line_start) };
  }

  [[nodiscard]] YamlMark mark(const yaml_mark_t& m) { return mark_at(offset(m.index)); }

  // yaml-cpp's mark of byte `offset` of the input, byte order mark included.
  [[nodiscard]] YamlMark mark_at_input(std::size_t offset)
  {
    return mark_at(offset < m_skipped ? 0 : offset - m_skipped);
  }

  // Where yaml-cpp puts an empty node: at the next token after `offset`, past blanks,
  // line breaks and comments (libyaml puts it right after the ':' or '-' before it).
  [[nodiscard]] YamlMark next_token_mark(std::size_t offset)
  {
    while (offset < m_text.size()) {
      const char c = m_text[offset];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++offset;
      } else if (c == '#') {
        const auto nl = m_text.find('\n', offset);
        offset = nl == std::string_view::npos ? m_text.size() : nl;
      } else {
        break;
      }
    }
    auto mark = mark_at(offset);
    if (offset == m_text.size()) {
      // yaml-cpp ends the stream with the column set back to 0 on the last line.
      mark.column = 0;
    }
    return mark;
  }

private:
  static constexpr std::string_view k_bom = "\xef\xbb\xbf";
  std::size_t m_skipped;
  std::string_view m_text;
  bool m_ascii;
  std::size_t m_char = 0;
  std::size_t m_byte = 0;
  std::size_t m_counted = 0; // the '\n's before this byte are in m_line
  std::size_t m_line = 0;
  std::size_t m_line_start = 0;
};

struct ParserGuard
{
  yaml_parser_t parser{};
  ParserGuard() = default;
  ParserGuard(const ParserGuard&) = delete;
  ParserGuard& operator=(const ParserGuard&) = delete;
  // Safe after a failed yaml_parser_initialize too: it leaves the parser zeroed.
  ~ParserGuard() { yaml_parser_delete(&parser); }
};

struct EventGuard
{
  yaml_event_t event{};
  EventGuard() = default;
  EventGuard(const EventGuard&) = delete;
  EventGuard& operator=(const EventGuard&) = delete;
  ~EventGuard() { yaml_event_delete(&event); }
};

std::string_view
chars(const yaml_char_t* s)
{
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

} // namespace

// Builds a YamlTree from libyaml's events with one explicit stack, so deep nesting
// costs heap, not recursion.
class YamlTreeBuilder
{
public:
  explicit YamlTreeBuilder(std::string_view text)
    : m_text(text)
    , m_pos(text)
  {
  }

  // True when run() stopped at k_max_yaml_depth: its message is final.
  [[nodiscard]] bool too_deep() const { return m_too_deep; }

  boost::system::result<YamlTree, YamlError> run()
  {
    ParserGuard guard;
    yaml_parser_t* parser = &guard.parser;
    if (yaml_parser_initialize(parser) == 0) {
      return YamlError{ "out of memory", { 0, 0 } };
    }
    yaml_parser_set_input_string(parser, reinterpret_cast<const unsigned char*>(m_text.data()),
                                 m_text.size());
    // A little over what the bench's config needs (3.5 MB of text: 2.3 MB of scalars,
    // 370,000 nodes); reserved pages that are never written cost no memory.
    m_tree.m_scalars.reserve(m_text.size());
    m_tree.m_nodes.reserve(m_text.size() / 8);
    while (true) {
      EventGuard e;
      if (yaml_parser_parse(parser, &e.event) == 0) {
        std::string problem = parser->problem != nullptr ? parser->problem : "unknown error";
        if (parser->context != nullptr) {
          problem += fmt::format(" ({})", parser->context);
        }
        // A reader error (a control character, say) has a byte offset instead of a mark.
        const auto mark = parser->error == YAML_READER_ERROR
                            ? m_pos.mark_at_input(parser->problem_offset)
                            : m_pos.mark(parser->problem_mark);
        return YamlError{ problem, mark };
      }
      const auto& ev = e.event;
      switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
          m_anchors.clear();
          m_doc_first = m_pending.size();
          break;
        case YAML_DOCUMENT_END_EVENT:
          if (m_pending.size() > m_doc_first) {
            m_tree.m_documents.push_back(m_pending[m_doc_first]);
          }
          m_pending.resize(m_doc_first);
          break;
        case YAML_SCALAR_EVENT:
          scalar(ev);
          break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
          if (m_open.size() >= k_max_yaml_depth) {
            m_too_deep = true;
            return YamlError{ fmt::format("expected collections nested at most {} deep, found "
                                          "deeper nesting",
                                          k_max_yaml_depth),
                              m_pos.mark(ev.start_mark) };
          }
          if (ev.type == YAML_SEQUENCE_START_EVENT) {
            start(ev, YamlType::sequence, chars(ev.data.sequence_start.anchor));
          } else {
            start(ev, YamlType::map, chars(ev.data.mapping_start.anchor));
          }
          break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
          end();
          break;
        case YAML_ALIAS_EVENT: {
          const auto it = m_anchors.find(std::string(chars(ev.data.alias.anchor)));
          if (it == m_anchors.end()) {
            return YamlError{ "the referenced anchor is not defined", m_pos.mark(ev.start_mark) };
          }
          m_pending.push_back(it->second);
          break;
        }
        case YAML_STREAM_END_EVENT:
          return std::move(m_tree);
        default:
          break;
      }
    }
  }

private:
  std::uint32_t add(YamlType type, YamlMark mark, std::string_view anchor)
  {
    const auto index = static_cast<std::uint32_t>(m_tree.m_nodes.size());
    YamlTree::Node n;
    n.type = type;
    n.line = static_cast<std::uint32_t>(mark.line);
    n.column = static_cast<std::uint32_t>(mark.column);
    m_tree.m_nodes.push_back(n);
    m_pending.push_back(index);
    if (!anchor.empty()) {
      // A later anchor of the same name hides the earlier one, as in yaml-cpp.
      m_anchors[std::string(anchor)] = index;
    }
    return index;
  }

  void scalar(const yaml_event_t& ev)
  {
    const auto& s = ev.data.scalar;
    const std::string_view value(reinterpret_cast<const char*>(s.value), s.length);
    const std::string_view anchor = chars(s.anchor);
    // yaml-cpp reads a plain, untagged ~, null, Null, NULL or nothing as null; quoted or
    // tagged they are strings.
    const bool plain = s.style == YAML_PLAIN_SCALAR_STYLE && s.tag == nullptr;
    if (plain && is_null_text(value)) {
      YamlMark mark;
      if (value.empty() && anchor.empty()) {
        mark = m_pos.next_token_mark(m_pos.offset(ev.start_mark.index));
      } else {
        mark = m_pos.mark(ev.start_mark);
      }
      add(YamlType::null, mark, anchor);
      return;
    }
    const auto index = add(YamlType::scalar, m_pos.mark(ev.start_mark), anchor);
    auto& n = m_tree.m_nodes[index];
    n.first = static_cast<std::uint32_t>(m_tree.m_scalars.size());
    n.count = static_cast<std::uint32_t>(value.size());
    m_tree.m_scalars.append(value);
  }

  void start(const yaml_event_t& ev, YamlType type, std::string_view anchor)
  {
    const auto index = add(type, m_pos.mark(ev.start_mark), anchor);
    m_open.push_back({ index, m_pending.size() });
  }

  void end()
  {
    const auto [index, first] = m_open.back();
    m_open.pop_back();
    auto& n = m_tree.m_nodes[index];
    n.first = static_cast<std::uint32_t>(m_tree.m_links.size());
    n.count = static_cast<std::uint32_t>(m_pending.size() - first);
    m_tree.m_links.insert(m_tree.m_links.end(),
                          m_pending.begin() + static_cast<std::ptrdiff_t>(first), m_pending.end());
    m_pending.resize(first);
  }

  struct Open
  {
    std::uint32_t node;
    std::size_t first_pending;
  };

  std::string_view m_text;
  Positions m_pos;
  YamlTree m_tree;
  // Children of the open collections, innermost last; moved to m_links when one closes.
  std::vector<std::uint32_t> m_pending;
  std::vector<Open> m_open;
  std::size_t m_doc_first = 0;
  std::unordered_map<std::string, std::uint32_t> m_anchors;
  bool m_too_deep = false;
};

boost::system::result<YamlTree, YamlError>
YamlTree::parse(std::string_view text)
{
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    return YamlError{ "the text is too large", { 0, 0 } };
  }
  YamlTreeBuilder builder(text);
  auto tree = builder.run();
  if (tree || builder.too_deep()) {
    return tree;
  }
  // Messages about YAML syntax have always been yaml-cpp's: ask it for the wording of
  // this one (the text is rejected either way; this costs time only on a broken file).
  if (auto worded = yaml_cpp_error(text)) {
    return *worded;
  }
  return tree;
}

} // namespace config
