// respiration.leak: unintentional leak, large-leak and disconnection conditions.
//
// Leak source, in order of preference:
//  1. the device's own unintentional-leak estimate (kLeak, L/min), when the device streams one
//     (ResMed PLD "Leak.2s" is already the unintentional leak);
//  2. otherwise from total flow (kFlow) and pressure: unintentional leak = flow offset (mean flow
//     over `offset_window_s`; whole breaths integrate to ~0) minus the mask's intended (vent)
//     leak. The intended leak is the last SettingsChange.intended_leak_lpm, else the vent curve
//     `vent_k_lpm` x sqrt(pressure) (0 = the flow signal is already leak-compensated patient flow).
// Output: Measurement "leak_lpm" per leak sample (device) or per window (estimate).
// LARGE_LEAK episode: leak > `large_leak_lpm` (24 L/min, CLINICAL.md) for >= `large_leak_min_s`;
// it closes when the leak is back below the limit for `large_leak_min_s` (hysteresis in time).
// DISCONNECTION episode: leak >= `disconnect_leak_lpm` (a sudden very large leak), or pressure
// below `disconnect_pressure_cm_h2o` while mean flow exceeds `disconnect_flow_lpm` (blower
// running into an open circuit), for >= `disconnect_min_s`.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "operators/core/operator_spec.h"
#include "operators/core/stream_operator.h"

namespace vigil::ops {

struct LeakOptions {
  double large_leak_lpm = 24;
  double large_leak_min_s = 10;
  double disconnect_leak_lpm = 90;
  double disconnect_pressure_cm_h2o = 1.0;
  double disconnect_flow_lpm = 60;
  double disconnect_min_s = 5;
  double offset_window_s = 60;    // many breaths: whole-breath flow integrates to ~0
  double vent_k_lpm = 0;          // intended leak = k * sqrt(P cmH2O); e.g. ~10 for a nasal mask
  double intended_leak_lpm = -1;  // fixed intended leak; -1 = from settings / vent curve

  static LeakOptions FromParameters(const Parameters& parameters);
};

class LeakMonitor final : public SpecifiedOperator<LeakMonitor> {
 public:
  static std::unique_ptr<const LeakMonitor> Make(const LeakOptions& options);

  static constexpr std::string_view kName = "respiration.leak";
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
  void Finish(OperatorState& state, Events& out) const override;

 private:
  explicit LeakMonitor(const LeakOptions& o);
  static constexpr std::array<Signal, 3> kInputs = {Signal::kLeak, Signal::kFlow,
                                                    Signal::kAirwayPressure};
  LeakOptions options_;
  // The rules as the explanations state them, formatted once rather than per chunk.
  std::string large_rule_;
  std::string disconnect_rule_;
};

}  // namespace vigil::ops
