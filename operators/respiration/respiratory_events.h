// respiration.events: apneas and hypopneas from airflow (kFlow, L/min), with SpO2 (kSpo2, %)
// when an oximeter is connected and the device's unintentional leak (kLeak, L/min) when the
// device sends it, and the AHI over the therapy time seen.
//
// Flow is taken about its running mean (time constant `flow_baseline_tau_s`, which removes the
// leak offset) and summarised in 0.2 s blocks. Two measures of it:
//  - ventilation: the mean |flow - mean| over a centred moving window - ResMed's "ventilation"
//    (half the absolute respiratory flow, moving average; the half cancels in the ratios):
//    `ventilation_window_s` (8 s, about two breaths) for hypopneas, `apnea_window_s` (2 s) for
//    apneas. One small breath does not make an event; a sustained fall of the air moved does.
//  - amplitude: the largest |flow - mean| in `envelope_window_s` (2.5 s), the AASM "peak signal
//    excursion", for the rules with SpO2.
// Baselines, valid after `warmup_s` of continuous flow (nothing is scored in the first minutes
// after mask-on, while breathing, mask and pressure settle):
//  - without SpO2: the median of the per-second 8-s ventilation over the last
//    `baseline_window_s` (180 s), events included, held while a candidate is open. ResMed compares
//    with the "recent average" ventilation (time constant 100 s), which runs through events too;
//    a baseline taken from the normal breaths between dips alone would make every waning phase of
//    periodic breathing a hypopnea.
//  - with SpO2: the median of the per-second amplitude over the last `baseline_window_s` outside
//    candidates (AASM: the amplitude of stable breathing before the event).
//
// Rules (CLINICAL.md; every episode's Explanation.note says which one was applied):
//  - device convention (ResMed AirSense 10 / S9 / S8 clinical guides), when there is no SpO2:
//    APNEA = 2-s ventilation <= (1 - device_apnea_drop) x baseline (a >= 75 % decrease) for
//    >= min_event_s (10 s); HYPOPNEA = 8-s ventilation <= device_hypopnea_fraction x baseline
//    (<= 50 %) for >= min_event_s.
//  - AASM Scoring Manual v2.6 (Berry et al., J Clin Sleep Med 2012), when SpO2 was valid within
//    30 s before the candidate started: APNEA = amplitude drop >= apnea_drop (90 %) for >= 10 s;
//    HYPOPNEA = amplitude drop >= hypopnea_drop (30 %) for >= 10 s and SpO2 falls
//    >= desaturation_pct (3 %) below its pre-event level (mean of the 10 s before) between the
//    start and `desaturation_lookahead_s` after the end; scored once that SpO2 has arrived.
// Not scored:
//  - candidates longer than `max_event_s` (mask off, sensor problem) or cut by a gap in the flow
//    (a gap is signal lost, never an apnea);
//  - candidates overlapping a large leak (device leak > `large_leak_lpm`, 24 L/min): the flow
//    signal is unreliable then, and ResMed calculates AHI "for times of low leak only"
//    (AirSense 10 user guide). Flow and leak arrive as separate frames: when the patient's
//    device sends leak, a qualifying event waits until the leak signal covers its end (at most
//    60 s of flow later) before it is scored or dropped;
//  - a candidate opening within `refractory_s` after a scored event ended: the recovery breaths
//    and the ventilatory undershoot that follows belong to that event (one event, not two).
// Episodes are reported after the fact (Phase::kClosed only). Finish() emits Measurement "ahi"
// (events per hour of flow seen) and "therapy_hours".
//
// Threading: the operator is immutable and may be shared; a state belongs to one patient and is
// used by one thread at a time. Make throws OptionError; Restore throws SnapshotError.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string_view>

#include "operators/core/operator_spec.h"
#include "operators/core/stream_operator.h"

namespace vigil::ops {

struct RespiratoryEventOptions {
  double apnea_drop = 0.9;                // AASM, with SpO2
  double hypopnea_drop = 0.3;             // AASM, with desaturation
  double device_apnea_drop = 0.75;        // ResMed convention, flow only
  double device_hypopnea_fraction = 0.5;  // ResMed convention, flow only
  double desaturation_pct = 3;
  double desaturation_lookahead_s = 30;
  double min_event_s = 10;
  double max_event_s = 120;
  double envelope_window_s = 2.5;
  double apnea_window_s = 2;
  double ventilation_window_s = 8;
  double baseline_window_s = 180;
  double warmup_s = 120;
  double refractory_s = 5;
  double large_leak_lpm = 24;
  double flow_baseline_tau_s = 20;

  static RespiratoryEventOptions FromParameters(const Parameters& parameters);
};

class RespiratoryEvents final : public SpecifiedOperator<RespiratoryEvents> {
 public:
  static std::unique_ptr<const RespiratoryEvents> Make(const RespiratoryEventOptions& options);

  static constexpr std::string_view kName = "respiration.events";
  static constexpr std::string_view kVersion = "2.0.0";
  // Name, version, inputs, parameters, alerts and measurements (name(), version() and
  // inputs() answer from it).
  static const OperatorSpec& Spec();

  std::unique_ptr<OperatorState> MakeState() const override;
  void Process(OperatorState& state, Signal signal, const Chunk& chunk, Events& out) const override;
  void OnGap(OperatorState& state, Signal signal, TimeUs from_us, TimeUs to_us,
             Events& out) const override;
  void Finish(OperatorState& state, Events& out) const override;
  const RespiratoryEventOptions& options() const { return options_; }

 private:
  explicit RespiratoryEvents(const RespiratoryEventOptions& o) : options_(o) {}
  static constexpr std::array<Signal, 3> kInputs = {Signal::kFlow, Signal::kSpo2, Signal::kLeak};
  RespiratoryEventOptions options_;
};

}  // namespace vigil::ops
