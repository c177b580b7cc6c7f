// Listings of the registered operators, from their specs: `vigil operators` prints them, and
// docs/operators.md holds the Markdown parameter tables verbatim (a unit test compares them, so
// the guide cannot drift from the code).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "operators/core/operator_spec.h"

namespace vigil::analysis {

// The operator's parameters as a Markdown table: key, default, valid values, unit, meaning.
std::string ParameterTableMarkdown(const ops::OperatorSpec& spec);

// Every registered operator: name, version, inputs, what it raises and emits, and its parameter
// table (Markdown when `markdown`, else aligned text).
std::string OperatorListing(bool markdown);

// `vigil operators [--markdown]`.
void AddOperatorsCommand(CLI::App& app);

}  // namespace vigil::analysis
