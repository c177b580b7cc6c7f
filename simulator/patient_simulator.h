// One simulated patient: the profile's devices (ECG patch, bilevel ventilator, tcCO2 monitor),
// their nightly therapy sessions, the event plan and the ground truth, generated block by
// block in device time.
//
// Determinism: everything follows from (cohort seed, patient index, options); the same inputs
// give the same samples, events and truth whatever the (whole-second) block size used to pull
// them: every random decision has its own stream, consumed in device-time order.
//
// Threading: one PatientSimulator is used by one thread at a time; different patients are
// independent and may be generated on different threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "operators/core/time.h"
#include "simulator/adherence_history.h"
#include "simulator/co2_generator.h"
#include "simulator/device_event.h"
#include "simulator/ecg_generator.h"
#include "simulator/patient_profile.h"
#include "simulator/truth.h"
#include "simulator/ventilation_generator.h"

namespace vigil::sim {

struct SimulationOptions {
  uint64_t seed = 1;
  // Device time of the first sample. Default 2026-01-05T21:00:00Z = 22:00 in Copenhagen: the
  // simulation starts at bedtime, with the mask going on.
  ops::TimeUs start_us = 1'767'646'800'000'000;
  // End of the simulation (exclusive); truth is clipped to it. Max = open-ended.
  ops::TimeUs end_us = INT64_MAX;
  // Multiplies every event rate (demos use 10-50 to see events within minutes).
  double event_rate = 1.0;
};

// One block of device time [start_us, start_us + seconds) for one patient. A signal is absent
// (count 0) when its device is not recording (ventilator and tcCO2 outside sessions, cardiac
// monitoring absent from the profile).
struct PatientBlock {
  ops::TimeUs start_us = 0;
  int seconds = 0;
  std::vector<int32_t> ecg;       // 250 Hz, EcgGenerator::kGainMv per count
  int64_t ecg_first_index = 0;    // index of ecg[0] in the ECG stream
  ops::TimeUs niv_first_us = 0;   // time of flow[0] / pressure[0]
  std::vector<int32_t> flow;      // 25 Hz
  std::vector<int32_t> pressure;  // 25 Hz
  ops::TimeUs co2_first_us = 0;
  std::vector<int32_t> co2;            // 1 Hz
  std::vector<SimDeviceEvent> events;  // in time order
  std::vector<TruthEvent> truth;       // truth that became known in this block
  void Clear();
};

class PatientSimulator {
 public:
  // Throws std::invalid_argument on bad options (event_rate < 0, end <= start).
  PatientSimulator(const PatientProfile& profile, const SimulationOptions& options);
  ~PatientSimulator();
  PatientSimulator(PatientSimulator&&) noexcept;
  PatientSimulator& operator=(PatientSimulator&&) noexcept;

  const PatientProfile& profile() const { return profile_; }
  // The 30-day adherence history (ventilated patients; empty sessions otherwise). Its device
  // events are in the first block's `events`, before anything else.
  const AdherenceHistory& history() const { return history_; }

  // Generates the next `seconds` (>= 1) of device time into `block` (cleared first).
  void Next(int seconds, PatientBlock& block);
  ops::TimeUs now_us() const { return now_us_; }
  ops::TimeUs end_us() const { return options_.end_us; }

  // Test hooks: replace the random plan with explicit conditions (before the first Next).
  void ForceEcgPlans(std::vector<EcgPlan> plans);
  void ForceNivPlans(std::vector<NivPlan> plans);

 private:
  void PlanEcgUntil(ops::TimeUs horizon);
  void StartSession(std::vector<TruthEvent>& truth);
  void EmitTruth(std::vector<TruthEvent>& from, std::vector<TruthEvent>& to) const;

  PatientProfile profile_;
  SimulationOptions options_;
  Rng plan_rng_;   // ECG conditions, hour by hour
  Rng night_rng_;  // future nights' schedule (separate: block sizes must not reorder draws)
  AdherenceHistory history_;
  std::vector<TruthEvent> pending_truth_;
  std::unique_ptr<EcgGenerator> ecg_;
  ops::TimeUs ecg_planned_until_ = 0;
  ops::TimeUs ecg_last_plan_end_ = 0;
  bool forced_ecg_ = false, forced_niv_ = false;
  std::vector<NivPlan> forced_niv_plans_;
  // Sessions: night 0 starts at options.start_us.
  int night_ = 0;
  Session session_;
  std::unique_ptr<VentilationGenerator> niv_;
  std::unique_ptr<Co2Generator> co2_;
  bool in_session_ = false;
  ops::TimeUs now_us_ = 0;
  bool first_block_ = true;
};

}  // namespace vigil::sim
