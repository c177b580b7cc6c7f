#include "pipeline/analysis/operator_registry.h"

#include <algorithm>
#include <array>

#include "operators/adherence/therapy_usage.h"
#include "operators/co2/hypoventilation.h"
#include "operators/ecg/ecg_monitor.h"
#include "operators/respiration/breath_segmentation.h"
#include "operators/respiration/leak.h"
#include "operators/respiration/respiratory_events.h"

namespace vigil::analysis {
namespace {

// THE list. One line per operator; keep it sorted by name.
const std::array<OperatorEntry, 6> kOperators = {{
    {"adherence.usage", "therapy sessions, noon-to-noon therapy days, compliance and decline",
     [](const ops::Parameters& p, const OperatorContext& c) { return ops::TherapyUsage::Make(ops::TherapyUsageOptions::FromParameters(p, c.time_zone)); }},
    {"co2.hypoventilation", "end-tidal / transcutaneous CO2: AASM sleep hypoventilation, hypercapnia, trend",
     [](const ops::Parameters& p, const OperatorContext& c) { return ops::Hypoventilation::Make(ops::HypoventilationOptions::FromParameters(p, c.time_zone)); }},
    {"ecg.arrhythmia", "ECG (every lead) with PLETH / ABP: filters, QRS detection, N/V/Q beat "
                       "classification, heart rate, rhythm alarms verified across the signals",
     [](const ops::Parameters& p, const OperatorContext&) -> std::unique_ptr<const ops::StreamOperator> { return ecg::EcgMonitor::Make(p); }},
    {"respiration.breaths", "breath segmentation: Vt, Ti/Te, rate, minute ventilation, peak flow",
     [](const ops::Parameters& p, const OperatorContext&) { return ops::BreathSegmentation::Make(ops::BreathSegmentationOptions::FromParameters(p)); }},
    {"respiration.events", "apnea and hypopnea (AASM with SpO2, ResMed convention without), AHI",
     [](const ops::Parameters& p, const OperatorContext&) { return ops::RespiratoryEvents::Make(ops::RespiratoryEventOptions::FromParameters(p)); }},
    {"respiration.leak", "unintentional leak, large leak (> 24 L/min) and disconnection",
     [](const ops::Parameters& p, const OperatorContext&) { return ops::LeakMonitor::Make(ops::LeakOptions::FromParameters(p)); }},
}};

}  // namespace

std::span<const OperatorEntry> Operators() { return kOperators; }

const OperatorEntry* FindOperator(std::string_view name) {
  const auto it = std::find_if(kOperators.begin(), kOperators.end(),
                               [&](const OperatorEntry& e) { return e.name == name; });
  return it == kOperators.end() ? nullptr : &*it;
}

}  // namespace vigil::analysis
