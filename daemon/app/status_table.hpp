#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace app {

// Every line `status` prints is at most this wide.
constexpr std::size_t k_status_width = 100;

// The human form of a status answer's fields (docs/control.md): the daemon, a table of
// controllers, a table of slots with one indented line per slot for what needs words
// (errors, backoff, expiry, the retiring token). Pure; tolerant of missing fields.
std::string render_status(const nlohmann::json& fields);

// "2026-12-06T11:30:00Z" → "2026-12-06 11:30"; "-" for null; anything else as it is.
std::string short_time(const nlohmann::json& value);

} // namespace app
