// respiration.breaths: breath-by-breath segmentation of airflow (ops::Signal::kFlow, L/min,
// inspiration positive) with airway pressure (kAirwayPressure, cmH2O) as the therapy context.
//
// Rule (CLINICAL.md "breath"): inspiration is flow above its running baseline. The baseline is
// an exponential mean of flow (time constant `baseline_tau_s`), so a total-flow signal that
// carries the mask's vent leak is handled like a leak-compensated patient-flow signal. A breath
// starts when flow rises `hysteresis_lpm` above the baseline and ends when the next one starts;
// inspiration ends when flow falls back below the baseline minus the hysteresis. Per breath:
// tidal volume (inspired volume, integral of flow above baseline), Ti, Te, respiratory rate
// (60 / breath duration), minute ventilation (Vt x rate), peak inspiratory flow.
// Not breaths: cycles with less than `min_tidal_volume_ml` inspired or shorter than
// `min_phase_s` in either phase (cardiogenic oscillation, noise), cycles longer than
// `max_breath_s` (apnea), and anything while pressure is below `min_pressure_cm_h2o` (mask off,
// blower stopped). A gap in the flow (OnGap, or a chunk that does not follow the previous one)
// drops the breath in progress: a gap is never a breath nor an apnea.
//
// Times: Breath.start_us is the first sample above the threshold; no filter delay (the baseline
// is causal and the threshold crossing is taken at the sample it happens).
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string_view>

#include "operators/core/operator_spec.h"
#include "operators/core/stream_operator.h"

namespace vigil::ops {

struct BreathSegmentationOptions {
  double baseline_tau_s = 60;
  double hysteresis_lpm = 2.0;
  double min_tidal_volume_ml = 60;
  double min_phase_s = 0.25;
  double max_breath_s = 15;
  double min_pressure_cm_h2o = 2.0;  // below: not in therapy; NaN pressure = unknown = accepted

  // Reads `respiration.breaths.*` parameters (defaults above). Throws OptionError.
  static BreathSegmentationOptions FromParameters(const Parameters& parameters);
};

class BreathSegmentation final : public SpecifiedOperator<BreathSegmentation> {
 public:
  // Throws OptionError naming the field and value when an option is out of range.
  static std::unique_ptr<const BreathSegmentation> Make(const BreathSegmentationOptions& options);

  static constexpr std::string_view kName = "respiration.breaths";
  static constexpr std::string_view kVersion = "1.0.0";
  // Name, version, inputs, parameters, alerts and measurements (name(), version() and
  // inputs() answer from it).
  static const OperatorSpec& Spec();

  std::unique_ptr<OperatorState> MakeState() const override;
  void Process(OperatorState& state, Signal signal, const Chunk& chunk, Events& out) const override;
  void OnGap(OperatorState& state, Signal signal, TimeUs from_us, TimeUs to_us,
             Events& out) const override;
  const BreathSegmentationOptions& options() const { return options_; }

 private:
  explicit BreathSegmentation(const BreathSegmentationOptions& o) : options_(o) {}
  static constexpr std::array<Signal, 2> kInputs = {Signal::kFlow, Signal::kAirwayPressure};
  BreathSegmentationOptions options_;
};

}  // namespace vigil::ops
