// `vigil replay`: a recording offline to JSON Lines (and, from the service work, to Kafka).
#pragma once

#include <CLI/CLI.hpp>

namespace vigil::replay {

// Adds the subcommand to `app`; the callback runs the replay and sets the exit code.
void AddReplayCommand(CLI::App& app);

}  // namespace vigil::replay
