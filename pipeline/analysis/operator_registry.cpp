#include "pipeline/analysis/operator_registry.h"

#include <algorithm>
#include <array>

#include "operators/ecg/ecg_monitor.h"

namespace vigil::analysis {
namespace {

// THE list. One line per operator; keep it sorted by name.
const std::array<OperatorEntry, 1> kOperators = {{
    {"ecg.arrhythmia", "ECG: filters, QRS detection, N/V/Q beat classification, heart rate",
     [](const ops::Parameters& p) -> std::unique_ptr<const ops::StreamOperator> { return ecg::EcgMonitor::Make(p); }},
}};

}  // namespace

std::span<const OperatorEntry> Operators() { return kOperators; }

const OperatorEntry* FindOperator(std::string_view name) {
  const auto it = std::find_if(kOperators.begin(), kOperators.end(),
                               [&](const OperatorEntry& e) { return e.name == name; });
  return it == kOperators.end() ? nullptr : &*it;
}

}  // namespace vigil::analysis
