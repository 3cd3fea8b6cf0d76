#pragma once

#include "util/error.hpp"

#include <string>

namespace config {

// The control socket's path from the config at `path`, reading nothing else: the client
// commands (status, rotate, ...) must work for an operator who may not read the admin
// credentials the rest of the config names, and must not fail on an unrelated error.
// `${ENV}` is expanded and a relative path is taken from the config's directory, as the
// daemon does; a config without control.socket gives the default. Errors (kind "config")
// carry FILE:LINE:COL.
util::Result<std::string> read_control_socket(const std::string& path);

} // namespace config
