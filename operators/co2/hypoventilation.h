// co2.hypoventilation: sleep hypoventilation, chronic hypercapnia and nightly CO2 measures from
// end-tidal CO2 (a capnogram, kCo2Waveform: one value per breath, see end_tidal.h) or from
// transcutaneous CO2 (kTranscutaneousCo2: the slow tcCO2 trend, every sample). mmHg throughout.
// A device streams one of the two: values of both would merge into one series in the order the
// chunks arrive, so the result would depend on how the two streams were chunked.
//
// The CO2 series is first cleaned of spikes by a running median of the last 5 values (a spike of
// one or two values - a bad breath, a sensor glitch - never counts; steps pass through unchanged
// in size and duration, two values late; reported times are taken from the unfiltered values).
// Holes up to `max_gap_s` are bridged; a longer one (signal lost) ends every run, and the episode
// open at that moment closes at the last value before it: a gap is never hypoventilation.
//
// SLEEP HYPOVENTILATION (AASM, both branches; Explanation.note names the branch):
//  A. CO2 > `high_mm_hg` (55) at every value for >= `min_duration_s` (10 min), or
//  B. CO2 >= awake baseline + `rise_mm_hg` (10) and > `rise_floor_mm_hg` (50) at every value for
//     >= 10 min. The awake baseline is `awake_baseline_mm_hg` when the clinician gave one (> 0),
//     else the median of the first `baseline_minutes` (10) of each recording (patients start
//     therapy awake); branch B is not evaluated until a baseline exists.
//  "For >= 10 min" means: the condition held at a value at time t and at every value up to t +
//  10 min. The episode opens (kOpened, start = t) at that moment and closes (kClosed) at the first
//  value where neither branch holds.
// CHRONIC HYPERCAPNIA: a therapy night whose median CO2 is > `hypercapnia_mm_hg` (52.5 mmHg =
//  7 kPa) gives a HYPERCAPNIA episode over the night (kClosed).
// NIGHTLY MEASURES (noon-to-noon therapy day in `time_zone`; a night closes at the first value
//  after its end, or when device time is a minute past it): Measurements "co2_median_mm_hg",
//  "co2_max_mm_hg", "co2_minutes_above_50", "co2_minutes_above_55" (each value stands for the
//  time to the next one, at most max_gap_s), and after >= `trend_nights` (7) nights the
//  least-squares slope of the last 7 nightly medians, "co2_trend_mm_hg_per_night"; a slope
//  >= `trend_rise_mm_hg_per_night` opens a CO2_TREND episode (a low-priority alert), closed when
//  it falls below.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "operators/co2/end_tidal.h"
#include "operators/core/operator_spec.h"
#include "operators/core/stream_operator.h"

namespace date {
class time_zone;
}

namespace vigil::ops {

struct HypoventilationOptions {
  double high_mm_hg = 55;
  double rise_mm_hg = 10;
  double rise_floor_mm_hg = 50;
  double min_duration_s = 600;
  double awake_baseline_mm_hg = -1;  // -1 (or <= 0): estimate from each recording's start
  double baseline_minutes = 10;
  double max_gap_s = 30;
  double hypercapnia_mm_hg = 52.5;
  int trend_nights = 7;
  double trend_rise_mm_hg_per_night = 0.5;
  std::string time_zone = "Europe/Copenhagen";
  EndTidalOptions end_tidal;

  static HypoventilationOptions FromParameters(const Parameters& parameters,
                                               std::string time_zone = "Europe/Copenhagen");
};

class Hypoventilation final : public SpecifiedOperator<Hypoventilation> {
 public:
  static std::unique_ptr<const Hypoventilation> Make(const HypoventilationOptions& options);

  static constexpr std::string_view kName = "co2.hypoventilation";
  static constexpr std::string_view kVersion = "1.0.0";
  // Name, version, inputs, parameters, alerts and measurements (name(), version() and
  // inputs() answer from it).
  static const OperatorSpec& Spec();

  std::unique_ptr<OperatorState> MakeState() const override;
  void Process(OperatorState& state, Signal signal, const Chunk& chunk, Events& out) const override;
  void OnGap(OperatorState& state, Signal signal, TimeUs from_us, TimeUs to_us,
             Events& out) const override;
  void AdvanceTo(OperatorState& state, TimeUs now_us, Events& out) const override;
  void Finish(OperatorState& state, Events& out) const override;

 private:
  Hypoventilation(const HypoventilationOptions& o, const date::time_zone* zone)
      : options_(o), zone_(zone) {}
  static constexpr std::array<Signal, 2> kInputs = {Signal::kCo2Waveform,
                                                    Signal::kTranscutaneousCo2};
  HypoventilationOptions options_;
  const date::time_zone* zone_;
};

}  // namespace vigil::ops
