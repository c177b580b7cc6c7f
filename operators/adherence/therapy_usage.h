// adherence.usage: therapy sessions, therapy days and the adherence rules, per patient.
//
// Sessions (CLINICAL.md): mask on to mask off. From signals (default): therapy is on while
// airway pressure (1-s means) is >= `mask_on_pressure_cm_h2o` with valid flow; a session ends
// after `mask_off_s` (60 s) of "off", or at the last sample before a gap in the data longer than
// that (a shorter break - refitting the mask, the device starting a new file - continues the
// session, as ResMed counts it). From device
// events (`session_source` = 1): kSessionStart / kSessionStop. Default `session_source` = -1
// (auto), decided per therapy day: the signals when the device streamed airway pressure that day,
// otherwise its session events - a device that reports sessions but streams no pressure still
// has therapy days, and one that streams pressure is measured by it (on the ResMed AirSense card
// the pressure-based usage is the closer to the device's own: 9 vs 8 of 10 nights within
// 5 min). Both trackers run in auto; 0 and 1 force one. Sessions shorter than
// `min_session_min` (5 min) are ignored.
// Therapy day: noon to noon in `time_zone` (see therapy_day.h). Nightly usage = the overlap of
// the day with its sessions (a session across noon is split). A day is closed - and emitted -
// once device time (data or AdvanceTo) has passed its end and no session that began before its
// end is still open; days without use are emitted with 0 min so the 30-day rules see them.
// On each closed day: TherapyDay; Measurements "usage_min", "usage_session_source" (0 signals,
// 1 device events: the source the day's usage came from), "adherence_score",
// "usage_mean_7_nights_h", "usage_mean_30_nights_h" (when defined), "nights_at_least_4h_30d",
// "compliance_30d" (1/0); NON_COMPLIANCE episode opened when, with >= 30 nights of history, the
// compliance rule is not met (closed when it is); ADHERENCE_DECLINE episode opened on the decline
// warning (closed when it clears), Explanation.note says which branch. Finish() closes the
// day in progress (a recording's last night is reported).
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "operators/adherence/adherence_rules.h"
#include "operators/core/operator_spec.h"
#include "operators/core/stream_operator.h"

namespace date {
class time_zone;
}

namespace vigil::ops {

struct TherapyUsageOptions {
  std::string time_zone = "Europe/Copenhagen";
  int session_source = -1;  // -1 auto (per day: signals if pressure streamed), 0 signals, 1 events
  double min_session_min = 5;
  double mask_on_pressure_cm_h2o = 2.5;
  double mask_off_s = 60;
  AdherenceRules rules;

  // Numeric keys from `parameters` (`adherence.usage.*`); the zone is the patient's (a string,
  // passed separately by the runtime). Throws OptionError.
  static TherapyUsageOptions FromParameters(const Parameters& parameters,
                                            std::string time_zone = "Europe/Copenhagen");
};

class TherapyUsage final : public SpecifiedOperator<TherapyUsage> {
 public:
  // Throws OptionError (e.g. "adherence.usage.time_zone = Mars/Base: unknown time zone").
  static std::unique_ptr<const TherapyUsage> Make(const TherapyUsageOptions& options);

  static constexpr std::string_view kName = "adherence.usage";
  static constexpr std::string_view kVersion = "1.0.0";
  // Name, version, inputs, parameters, alerts and measurements (name(), version() and
  // inputs() answer from it).
  static const OperatorSpec& Spec();

  std::unique_ptr<OperatorState> MakeState() const override;
  void Process(OperatorState& state, Signal signal, const Chunk& chunk, Events& out) const override;
  void OnDeviceEvent(OperatorState& state, const DeviceEventView& event,
                     Events& out) const override;
  void OnGap(OperatorState& state, Signal signal, TimeUs from_us, TimeUs to_us,
             Events& out) const override;
  void AdvanceTo(OperatorState& state, TimeUs now_us, Events& out) const override;
  void Finish(OperatorState& state, Events& out) const override;
  const TherapyUsageOptions& options() const { return options_; }

 private:
  TherapyUsage(const TherapyUsageOptions& o, const date::time_zone* zone)
      : options_(o), zone_(zone) {}
  static constexpr std::array<Signal, 2> kInputs = {Signal::kAirwayPressure, Signal::kFlow};
  TherapyUsageOptions options_;
  const date::time_zone* zone_;
};

}  // namespace vigil::ops
