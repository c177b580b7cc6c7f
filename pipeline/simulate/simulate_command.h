// `vigil simulate`: a synthetic cohort streamed to Kafka (vigil.telemetry.v1, keyed by patient),
// or analysed offline to JSON Lines, or written as envelopes; ground truth beside it.
#pragma once

#include <CLI/CLI.hpp>

namespace vigil::simulate {

// Registers the subcommand on `app`. Failures print "vigil simulate: <why>" and exit with 2.
void AddSimulateCommand(CLI::App& app);

}  // namespace vigil::simulate
