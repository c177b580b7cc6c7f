// The one explicit list of operators the service and the replay can run, by name. Adding an
// operator: its header/source pair in operators/<domain>/ (with its OperatorSpec) and one line
// in operator_registry.cpp. No static-initialiser registration, no count to bump.
#pragma once

#include <span>
#include <string_view>

#include "operators/core/operator_spec.h"

namespace vigil::analysis {

using ops::OperatorContext;

// Every registered operator, sorted by name.
std::span<const ops::OperatorSpec> Operators();

// nullptr when no operator has that name.
const ops::OperatorSpec* FindOperator(std::string_view name);

}  // namespace vigil::analysis
