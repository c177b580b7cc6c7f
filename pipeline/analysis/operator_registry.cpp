#include "pipeline/analysis/operator_registry.h"

#include <algorithm>
#include <array>

namespace vigil::analysis {
namespace {

// THE list. One line per operator; keep it sorted by name.
const std::array<OperatorEntry, 0> kOperators = {};

}  // namespace

std::span<const OperatorEntry> Operators() { return kOperators; }

const OperatorEntry* FindOperator(std::string_view name) {
  const auto it = std::find_if(kOperators.begin(), kOperators.end(),
                               [&](const OperatorEntry& e) { return e.name == name; });
  return it == kOperators.end() ? nullptr : &*it;
}

}  // namespace vigil::analysis
