// The one explicit list of operators the service and the replay can run, by name. Adding an
// operator: its header/source pair in operators/<domain>/, one line in operator_registry.cpp,
// its test, and a paragraph in docs/operators.md. No static-initialiser registration.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "operators/core/stream_operator.h"

namespace vigil::analysis {

struct OperatorEntry {
  std::string_view name;         // e.g. "ecg.arrhythmia"; prefix of its configuration keys
  std::string_view description;  // one line for `vigil operators` and the docs
  // Builds the operator from its parameters (keys without the prefix). Throws
  // ops::OptionError naming "<name>.<key>" and the value on a bad or unknown parameter.
  std::function<std::unique_ptr<const ops::StreamOperator>(const ops::Parameters&)> make;
};

std::span<const OperatorEntry> Operators();

// nullptr when no operator has that name.
const OperatorEntry* FindOperator(std::string_view name);

}  // namespace vigil::analysis
