#pragma once

#include "config/config.hpp"
#include "util/error.hpp"

#include <string>

namespace config {

// Reads, parses and validates the config file at `path` (DESIGN §5). On success the
// YAML node tree is already freed. On failure the error's message holds every
// problem found, one `FILE:LINE:COL: key.path: expected …, found …` per line, and
// its kind is "config".
util::Result<Config> load(const std::string& path);

// The same, from text already in memory; `name` stands for the file in messages.
// File-mode checks still apply to files the config names.
util::Result<Config> load_from_string(const std::string& text, const std::string& name);

} // namespace config
