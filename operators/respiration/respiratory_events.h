// respiration.events: apneas and hypopneas from airflow (kFlow, L/min), with SpO2 (kSpo2, %)
// when an oximeter is connected, and the AHI over the therapy time seen.
//
// Amplitude: the largest |flow - flow baseline| in a sliding window of `envelope_window_s`
// (longer than half a breath, so normal breathing never looks flat), on 0.2 s blocks. The
// pre-event baseline amplitude is the median of the per-second amplitudes of the last
// `baseline_window_s` outside event candidates (robust to sighs and arousal breaths), frozen while
// a candidate is open, valid after `warmup_s` of continuous flow. The window's lag is
// taken out of the event times: an event starts where the last normal-sized peak ended and ends
// at the first normal-sized peak again.
//
// Rules (CLINICAL.md; every episode's Explanation.note says which one was applied):
//  - APNEA: amplitude <= (1 - apnea_drop) x baseline (a drop >= 90 %) for >= min_event_s.
//  - HYPOPNEA, AASM rule, when SpO2 was valid within 30 s before the candidate started:
//    amplitude <= (1 - hypopnea_drop) x baseline (>= 30 % drop) for >= min_event_s, and SpO2 falls
//    >= desaturation_pct below its pre-event level (mean of the 10 s before) between the start
//    and `desaturation_lookahead_s` after the end. Scored once that SpO2 has arrived.
//  - HYPOPNEA, device convention (ResMed), without SpO2: ventilation <= device_hypopnea_fraction
//    x baseline ventilation (<= 50 %) for >= min_event_s. Ventilation, as the device measures it,
//    is the mean |flow - baseline| over `ventilation_window_s` (about one breath), centred, and
//    its baseline is the median like the amplitude's: breath-to-breath variation of single peaks
//    does not make an event, a sustained fall of the air moved does.
// Candidates longer than `max_event_s` are not events (mask off, sensor problem), and neither is
// anything cut by a gap in the flow (a gap is signal lost, never an apnea). Episodes are
// reported after the fact (Phase::kClosed only). Finish() emits Measurement "ahi" (events per
// hour of flow seen) and "therapy_hours".
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string_view>

#include "operators/core/stream_operator.h"

namespace vigil::ops {

struct RespiratoryEventOptions {
  double apnea_drop = 0.9;
  double hypopnea_drop = 0.3;              // AASM, with desaturation
  double device_hypopnea_fraction = 0.5;   // ResMed convention, flow only
  double desaturation_pct = 3;
  double desaturation_lookahead_s = 30;
  double min_event_s = 10;
  double max_event_s = 120;
  double envelope_window_s = 2.5;
  double ventilation_window_s = 5;
  double baseline_window_s = 120;
  double warmup_s = 60;
  double flow_baseline_tau_s = 20;

  static RespiratoryEventOptions FromParameters(const Parameters& parameters);
};

class RespiratoryEvents final : public StreamOperator {
 public:
  static std::unique_ptr<const RespiratoryEvents> Make(const RespiratoryEventOptions& options);

  std::string_view name() const override { return "respiration.events"; }
  std::string_view version() const override { return "1.0.0"; }
  std::span<const Signal> inputs() const override { return kInputs; }
  std::unique_ptr<OperatorState> MakeState() const override;
  void Process(OperatorState& state, Signal signal, const Chunk& chunk,
               Events& out) const override;
  void OnGap(OperatorState& state, Signal signal, TimeUs from_us, TimeUs to_us,
             Events& out) const override;
  void Finish(OperatorState& state, Events& out) const override;
  const RespiratoryEventOptions& options() const { return options_; }

 private:
  explicit RespiratoryEvents(const RespiratoryEventOptions& o) : options_(o) {}
  static constexpr std::array<Signal, 2> kInputs = {Signal::kFlow, Signal::kSpo2};
  RespiratoryEventOptions options_;
};

}  // namespace vigil::ops
