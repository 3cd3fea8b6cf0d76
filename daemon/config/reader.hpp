#pragma once

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/expand.hpp"
#include "config/yaml_tree.hpp"
#include "util/duration.hpp"

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// The generic half of the loader: typed readers of YAML nodes (scalars, durations,
// sequences, mappings) that report with marks and key paths, count the node budget,
// and walk a mapping through a key table. What the keys mean is in loader.cpp.
namespace config {

// Node visits allowed while walking the tree. Anchors and aliases share nodes, so a
// "billion laughs" document is small to parse but huge to walk: the budget stops it.
// 10,000 users with three sinks each need about 400,000 visits.
inline constexpr std::size_t k_max_node_visits = 2'000'000;

// Thrown by Reader::visit() when the budget is spent; load() turns it into one error.
struct TooManyNodes
{};

// The "found …" part of a message: the value as written, never an expanded one.
std::string describe(const YamlNode& node);

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

// A key path such as users[12].sinks[0].url, held as a link to its parent and spelled
// out only when a message needs it: a 10,000-user config walks some 400,000 of them and
// has no error. A KeyPath refers to its parent and its name: keep it no longer than them.
class KeyPath
{
public:
  // A top-level path ("controllers", "control.socket"); "" is the root.
  KeyPath(const char* name)
    : m_name(name)
  {
  }
  // A mapping key: a view into the YamlTree, which outlives the walk.
  KeyPath(std::string_view name)
    : m_name(name)
  {
  }
  KeyPath(std::string&&) = delete; // would outlive the string

  [[nodiscard]] KeyPath child(std::string_view key) const { return KeyPath(this, key, 0, false); }
  [[nodiscard]] KeyPath at(std::size_t index) const { return KeyPath(this, {}, index, true); }
  [[nodiscard]] bool empty() const { return m_parent == nullptr && m_name.empty(); }
  [[nodiscard]] std::string str() const;

private:
  KeyPath(const KeyPath* parent, std::string_view name, std::size_t index, bool is_index)
    : m_parent(parent)
    , m_name(name)
    , m_index(index)
    , m_is_index(is_index)
  {
  }

  const KeyPath* m_parent = nullptr;
  std::string_view m_name;
  std::size_t m_index = 0;
  bool m_is_index = false;
};

// What a key of a table holds: says how it is read (and documents the table).
enum class ValueType
{
  string,
  path,     // an expanded string; relative to the config file's directory
  expanded, // a string with ${NAME} and ${file:PATH}
  duration,
  integer,
  boolean,
  choice,
  section, // a mapping with a key table of its own
  list,    // a sequence of items
  mapping  // a mapping of user-chosen names
};

// One key of a section: its name, its type and the function that reads it into the
// section's target. A section is a span of these, in the order the "known keys"
// message lists them.
template<typename Ctx, typename Target>
struct Key
{
  std::string_view name;
  ValueType type;
  void (*read)(Ctx& ctx, Target& target, const YamlNode& value, const KeyPath& path);
};

class Reader
{
public:
  Reader(std::string file, Diagnostics& diagnostics)
    : m_file(std::move(file))
    , m_mark_file(m_file)
    , m_diag(diagnostics)
  {
  }

  [[nodiscard]] Mark mark(const YamlNode& node) const;
  // Reports at `node`'s mark. The content of every ${file:} read so far is replaced by
  // its ${file:PATH} form: a message about an expanded path never shows a secret.
  void error(const YamlNode& node, const KeyPath& path, const std::string& message);
  // Counts one node against the budget; throws TooManyNodes past it.
  void visit()
  {
    if (++m_visits > k_max_node_visits) {
      throw TooManyNodes{};
    }
  }

  // Checks that `node` is a mapping whose keys are in `keys` and unique, and reads each
  // through its entry. Returns false (after reporting) when it is not a mapping.
  template<typename Ctx, typename Target>
  bool section(const YamlNode& node, const KeyPath& path,
               std::type_identity_t<std::span<const Key<Ctx, Target>>> keys, Ctx& ctx,
               Target& target)
  {
    return map_keys(
      node, path, keys.size(), [&](std::size_t i) { return keys[i].name; },
      [&](std::size_t i, const YamlNode& value, const KeyPath& child) {
        keys[i].read(ctx, target, value, child);
      });
  }

  std::optional<std::string> string(const YamlNode& node, const KeyPath& path);
  // A string that may hold ${ENV} and ${file:PATH}.
  std::optional<std::string> expanded(const YamlNode& node, const KeyPath& path);
  // The same, kept in wiped memory (a header value that may come from a file).
  std::optional<util::SecretText> expanded_secret(const YamlNode& node, const KeyPath& path);
  // An expanded path; a relative path is taken from the config file's directory.
  std::optional<std::string> path(const YamlNode& node, const KeyPath& key_path);
  std::optional<util::Seconds> duration(const YamlNode& node, const KeyPath& path);
  std::optional<int> integer(const YamlNode& node, const KeyPath& path, int min, int max);
  std::optional<bool> boolean(const YamlNode& node, const KeyPath& path);
  std::optional<std::string> choice(const YamlNode& node, const KeyPath& path,
                                    std::initializer_list<std::string_view> options);
  // Calls `each` for the items of a sequence; reports anything else.
  bool sequence(const YamlNode& node, const KeyPath& path,
                const std::function<void(std::size_t index, const YamlNode& item)>& each);

  [[nodiscard]] const std::string& file() const { return m_file; }
  // The directory relative paths are taken from.
  [[nodiscard]] std::string directory() const;

  // Expands ${NAME} and ${file:PATH} in `text`; every ${file:} of one load shares a
  // cache and a byte budget (expand.hpp).
  util::Result<std::string> expand(std::string_view text);

private:
  bool map_keys(const YamlNode& node, const KeyPath& path, std::size_t count,
                const std::function<std::string_view(std::size_t)>& name_of,
                const std::function<void(std::size_t, const YamlNode&, const KeyPath&)>& each);

  std::string m_file;
  MarkFile m_mark_file; // m_file, shared by every Mark this reader makes
  Diagnostics& m_diag;
  std::size_t m_visits = 0;
  Expander m_expander;
};

// Key readers for the common cases: a member of the target read by one typed reader.
// `&Controller::timeout` works for a target derived from Controller.
template<auto Member, typename Ctx, typename Target>
void
read_string(Ctx& ctx, Target& t, const YamlNode& v, const KeyPath& p)
{
  if (auto s = ctx.r.string(v, p)) {
    t.*Member = std::move(*s);
  }
}

template<auto Member, typename Ctx, typename Target>
void
read_path(Ctx& ctx, Target& t, const YamlNode& v, const KeyPath& p)
{
  if (auto s = ctx.r.path(v, p)) {
    t.*Member = std::move(*s);
  }
}

template<auto Member, typename Ctx, typename Target>
void
read_duration(Ctx& ctx, Target& t, const YamlNode& v, const KeyPath& p)
{
  if (auto d = ctx.r.duration(v, p)) {
    t.*Member = *d;
  }
}

template<auto Member, int Min, int Max, typename Ctx, typename Target>
void
read_integer(Ctx& ctx, Target& t, const YamlNode& v, const KeyPath& p)
{
  if (auto i = ctx.r.integer(v, p, Min, Max)) {
    t.*Member = *i;
  }
}

template<auto Member, typename Ctx, typename Target>
void
read_boolean(Ctx& ctx, Target& t, const YamlNode& v, const KeyPath& p)
{
  if (auto b = ctx.r.boolean(v, p)) {
    t.*Member = *b;
  }
}

} // namespace config
