#pragma once

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace config {

class YamlTree;

enum class YamlType : std::uint8_t
{
  undefined, // a default node, or a key a mapping does not have
  null,
  scalar,
  sequence,
  map
};

// A 0-based position as yaml-cpp gives it: line = '\n's before it, column = bytes since.
struct YamlMark
{
  int line = -1;
  int column = -1;

  [[nodiscard]] bool is_null() const { return line < 0; }
  bool operator==(const YamlMark&) const = default;
};

// A syntax error: yaml-cpp's wording and mark where yaml-cpp rejects the text too.
struct YamlError
{
  std::string message;
  YamlMark mark;
};

// Collections nest at most this deep. A config needs about six levels; libyaml's scanner
// costs O(depth) per token, so a deeply nested text would otherwise take hours to reject.
inline constexpr std::size_t k_max_yaml_depth = 100;

// A view of one node of a YamlTree; valid while the tree lives and is not moved.
// A default YamlNode is undefined, like the result of looking up a missing key.
class YamlNode
{
public:
  class ItemIterator;
  class EntryIterator;
  template<typename It>
  struct Range
  {
    It first;
    It last;
    [[nodiscard]] It begin() const { return first; }
    [[nodiscard]] It end() const { return last; }
  };

  YamlNode() = default;

  [[nodiscard]] YamlType type() const;
  [[nodiscard]] bool is_defined() const { return m_tree != nullptr; }
  explicit operator bool() const { return is_defined(); }
  [[nodiscard]] bool is_null() const { return type() == YamlType::null; }
  [[nodiscard]] bool is_scalar() const { return type() == YamlType::scalar; }
  [[nodiscard]] bool is_sequence() const { return type() == YamlType::sequence; }
  [[nodiscard]] bool is_map() const { return type() == YamlType::map; }

  // The text of a scalar as parsed (escapes and folding applied); "" for any other node.
  [[nodiscard]] std::string_view scalar() const;
  // Where the node starts (its anchor or tag, if it has one); a null mark if undefined.
  [[nodiscard]] YamlMark mark() const;
  // Items of a sequence, pairs of a mapping, 0 for anything else.
  [[nodiscard]] std::size_t size() const;
  // The value of the first scalar key equal to `key`; undefined if none or not a mapping.
  [[nodiscard]] YamlNode operator[](std::string_view key) const;

  // The items of a sequence (empty for anything else), in document order.
  [[nodiscard]] Range<ItemIterator> items() const;
  // The key/value pairs of a mapping (empty for anything else), in document order,
  // duplicate keys included.
  [[nodiscard]] Range<EntryIterator> entries() const;

private:
  friend class YamlTree;
  YamlNode(const YamlTree* tree, std::uint32_t index)
    : m_tree(tree)
    , m_index(index)
  {
  }

  const YamlTree* m_tree = nullptr;
  std::uint32_t m_index = 0;
};

// The node trees of a YAML text, parsed by libyaml into one arena: nodes in one
// vector, children as ranges of a link vector, scalar text in one buffer. An alias is
// the anchored node itself (shared, never copied), as in yaml-cpp, so a "billion laughs"
// text stays small here and its walkers need a visit budget.
class YamlTree
{
public:
  // Parses every document of `text`. A text libyaml rejects gives yaml-cpp's message
  // and mark for it, or libyaml's own where yaml-cpp accepts the text; an alias to an
  // anchor not defined before it in its document is an error too.
  static boost::system::result<YamlTree, YamlError> parse(std::string_view text);

  [[nodiscard]] std::size_t document_count() const { return m_documents.size(); }
  // The root node of document `i` (< document_count()).
  [[nodiscard]] YamlNode document(std::size_t i) const { return { this, m_documents.at(i) }; }

private:
  friend class YamlNode;
  friend class YamlTreeBuilder;

  struct Node
  {
    // scalar: offset and length in m_scalars; collections: first link and link count
    // (two links per mapping pair: key, value).
    std::uint32_t first = 0;
    std::uint32_t count = 0;
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    YamlType type = YamlType::null;
  };

  std::vector<Node> m_nodes;
  std::vector<std::uint32_t> m_links;
  std::string m_scalars;
  std::vector<std::uint32_t> m_documents;
};

class YamlNode::ItemIterator
{
public:
  ItemIterator(const YamlTree* tree, const std::uint32_t* link)
    : m_tree(tree)
    , m_link(link)
  {
  }
  YamlNode operator*() const { return { m_tree, *m_link }; }
  ItemIterator& operator++()
  {
    ++m_link;
    return *this;
  }
  bool operator==(const ItemIterator& other) const { return m_link == other.m_link; }

private:
  const YamlTree* m_tree;
  const std::uint32_t* m_link;
};

class YamlNode::EntryIterator
{
public:
  EntryIterator(const YamlTree* tree, const std::uint32_t* link)
    : m_tree(tree)
    , m_link(link)
  {
  }
  std::pair<YamlNode, YamlNode> operator*() const
  {
    return { YamlNode(m_tree, m_link[0]), YamlNode(m_tree, m_link[1]) };
  }
  EntryIterator& operator++()
  {
    m_link += 2;
    return *this;
  }
  bool operator==(const EntryIterator& other) const { return m_link == other.m_link; }

private:
  const YamlTree* m_tree;
  const std::uint32_t* m_link;
};

} // namespace config
