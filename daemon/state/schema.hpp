#pragma once

#include "util/error.hpp"

#include <cstdint>

namespace state {
class Database;
}

// The layout of state.db and its forward migrations. PRAGMA user_version holds the
// schema version; PRAGMA application_id marks the file as ours.
namespace state::schema {

// The version this binary writes. A database with a higher one is refused.
constexpr int k_version = 5;

// "JTR1": tells our database apart from any other SQLite file.
constexpr std::int32_t k_application_id = 0x4a545231;

// Applies the migrations from version `from` up to k_version and sets user_version, inside
// the caller's transaction. `from` 0 creates every table.
util::Result<void> migrate(Database& db, int from);

} // namespace state::schema
