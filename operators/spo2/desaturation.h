// spo2.desaturation: the pulse-oximetry measures of home-NIV follow-up, per therapy night (noon
// to noon in the patient's zone), from the SpO2 (%) a pulse oximeter streams (kSpo2, usually
// 1 Hz).
//
// Valid samples: `valid_min_pct`-100 % (oximeters send 0, 127 or NaN when they lose the finger).
// Each valid sample stands for the time to the next one in the same night, at most `max_gap_s`.
//
// Desaturations (oxygen desaturation index, ODI): SpO2 at least 3 % (ODI3) or 4 % (ODI4) below
// the baseline - the drops of the AASM scoring manual's desaturation criteria (Berry et al., AASM
// Manual for the Scoring of Sleep and Associated Events v2.6, 2020) - for at least `min_event_s`
// (10 s, the usual convention of oximetry ODI; the manual itself sets no duration for a
// desaturation). The manual leaves the oximetry baseline to the device; here it is the median
// of the valid SpO2 of the last `baseline_s` (120 s; at most one sample a second is kept), which
// brief repetitive dips hardly move, frozen when SpO2 first falls below it by the drop. Nothing
// is scored until that window is half full (stream start, or a probe-off longer than it). A
// desaturation ends when SpO2 is back above the frozen baseline minus the drop, or at a hole
// longer than `max_gap_s`. The two indices are counted independently.
//
// Per night, as nightly Measurements (OperatorSpec: they reach that night's therapy-day
// aggregate and the report), at the night's end, when at least one valid sample was seen:
//   spo2_mean_pct, spo2_min_pct           mean and minimum SpO2 (%)
//   spo2_odi3_per_h, spo2_odi4_per_h      desaturations per hour of valid SpO2
//   spo2_t90_min, spo2_t90_pct            time with SpO2 < 90 % (T90), minutes and % of valid time
//   spo2_hours                            valid SpO2 time (h)
// A night closes when device time (a sample or the watermark) reaches its end, or at Finish;
// samples of a night already closed are ignored.
//
// No alert: the measures are for follow-up, not alarms.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "operators/core/operator_spec.h"
#include "operators/core/stream_operator.h"

namespace date {
class time_zone;
}

namespace vigil::ops {

struct DesaturationOptions {
  double min_event_s = 10;
  double baseline_s = 120;
  double valid_min_pct = 50;
  double max_gap_s = 30;
  std::string time_zone = "Europe/Copenhagen";

  // Throws OptionError naming "spo2.desaturation.<key>".
  static DesaturationOptions FromParameters(const Parameters& parameters,
                                            std::string time_zone = "Europe/Copenhagen");
};

class Desaturation final : public SpecifiedOperator<Desaturation> {
 public:
  static constexpr std::string_view kName = "spo2.desaturation";
  static constexpr std::string_view kVersion = "1.0.0";
  // Name, version, inputs, parameters, alerts and measurements (name(), version() and
  // inputs() answer from it).
  static const OperatorSpec& Spec();
  // Throws OptionError naming the key and value.
  static std::unique_ptr<const Desaturation> Make(const DesaturationOptions& options);

  std::unique_ptr<OperatorState> MakeState() const override;
  void Process(OperatorState& state, Signal signal, const Chunk& chunk, Events& out) const override;
  void AdvanceTo(OperatorState& state, TimeUs now_us, Events& out) const override;
  void Finish(OperatorState& state, Events& out) const override;

 private:
  Desaturation(const DesaturationOptions& options, const date::time_zone* zone)
      : options_(options), zone_(zone) {}
  static constexpr std::array<Signal, 1> kInputs = {Signal::kSpo2};
  DesaturationOptions options_;
  const date::time_zone* zone_;
};

}  // namespace vigil::ops
