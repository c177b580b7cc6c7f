// The one explicit list of operators the service and the replay can run, by name. Adding an
// operator: its header/source pair in operators/<domain>/, one line in operator_registry.cpp,
// its test, and a paragraph in docs/operators.md. No static-initialiser registration.
#pragma once

#include <functional>
#include <string>
#include <memory>
#include <span>
#include <string_view>

#include "operators/core/stream_operator.h"

namespace vigil::analysis {

// What an operator may need to know about the patient besides its parameters.
struct OperatorContext {
  // IANA zone of the patient's home (therapy days run noon to noon in it): the patient's
  // configured zone, else analysis.default_time_zone.
  std::string time_zone = "Europe/Copenhagen";
};

struct OperatorEntry {
  std::string_view name;         // e.g. "ecg.arrhythmia"; prefix of its configuration keys
  std::string_view description;  // one line for `vigil operators` and the docs
  // Builds the operator from its parameters (keys without the prefix). Throws
  // ops::OptionError naming "<name>.<key>" and the value on a bad or unknown parameter.
  std::function<std::unique_ptr<const ops::StreamOperator>(const ops::Parameters&,
                                                           const OperatorContext&)>
      make;
};

std::span<const OperatorEntry> Operators();

// nullptr when no operator has that name.
const OperatorEntry* FindOperator(std::string_view name);

}  // namespace vigil::analysis
