#include "pipeline/analysis/operator_registry.h"

#include <algorithm>
#include <vector>

#include "operators/adherence/therapy_usage.h"
#include "operators/co2/hypoventilation.h"
#include "operators/ecg/ecg_monitor.h"
#include "operators/respiration/breath_segmentation.h"
#include "operators/respiration/leak.h"
#include "operators/respiration/respiratory_events.h"
#include "operators/spo2/desaturation.h"

namespace vigil::analysis {

std::span<const ops::OperatorSpec> Operators() {
  // THE list: one line per operator, sorted by name.
  static const std::vector<ops::OperatorSpec> specs = {
      ops::TherapyUsage::Spec(),       ops::Hypoventilation::Spec(),   ecg::EcgMonitor::Spec(),
      ops::BreathSegmentation::Spec(), ops::RespiratoryEvents::Spec(), ops::LeakMonitor::Spec(),
      ops::Desaturation::Spec(),
  };
  return specs;
}

const ops::OperatorSpec* FindOperator(std::string_view name) {
  const auto all = Operators();
  const auto it = std::find_if(all.begin(), all.end(),
                               [&](const ops::OperatorSpec& e) { return e.name == name; });
  return it == all.end() ? nullptr : &*it;
}

}  // namespace vigil::analysis
