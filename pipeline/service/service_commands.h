// `vigil run` (the streaming service) and `vigil tail` (a topic as JSON Lines).
#pragma once

#include <CLI/CLI.hpp>

namespace vigil::service {

// Each adds its subcommand to `app`; the callback runs it and sets the exit code (config errors
// exit 2, fatal Kafka errors 1).
void AddRunCommand(CLI::App& app);
void AddTailCommand(CLI::App& app);

}  // namespace vigil::service
