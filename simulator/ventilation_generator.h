// Bilevel (ST) NIV device signals at 25 Hz during one therapy session: total flow (L/min,
// inspiration positive, 0.1 L/min per count) and mask pressure (cmH2O, 0.02 cmH2O per count).
//
// Breaths: a half-sine inspiratory flow over Ti and a mono-exponential passive expiration
// (time constant of the respiratory system, longer in COPD) whose integral returns the tidal
// volume, so whole breaths integrate to zero. Per breath the rate, Ti and Vt vary (8 %, 5 %,
// 10 %); the device triggers a timed breath when the patient is slower than the backup rate.
// Pressure approaches IPAP/EPAP with a 100 ms time constant (rise time / cycling).
// Total flow = patient flow + intended vent leak (k sqrt(P) at the breath-mean pressure: the
// vent's leak follows the mean pressure, not the 40 ms swings; a limit of the model) +
// unintentional leak (a few L/min, plus planned large-leak episodes) + cardiogenic oscillation
// and sensor noise.
// Events act on samples: apnea / hypopnea scale the patient's flow to `level` of normal inside
// the planned interval (1 s ramps inside it); large leak adds `level` L/min; disconnection
// drives pressure toward 0 and flow to the blower's maximum (`level` L/min).
//
// Threading: one generator per session, used by one thread at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "operators/core/time.h"
#include "simulator/patient_profile.h"
#include "simulator/random.h"
#include "simulator/truth.h"

namespace vigil::sim {

struct NivPlan {
  TruthKind kind{};  // kApnea, kHypopnea, kLargeLeak, kDisconnection
  ops::TimeUs start_us = 0;
  ops::TimeUs end_us = 0;
  double level = 0;  // residual flow fraction (apnea, hypopnea), leak or flow in L/min
};

class VentilationGenerator {
 public:
  static constexpr double kRateHz = 25;
  static constexpr double kFlowGainLpm = 0.1;
  static constexpr double kPressureGainCmH2o = 0.02;

  // `start_us`: device time of the first sample (mask on).
  VentilationGenerator(const PatientProfile& profile, ops::TimeUs start_us, uint64_t seed);

  // Plans in start order, not overlapping.
  void Schedule(const NivPlan& plan) { plans_.push_back(plan); }

  // Next `n` samples of flow and pressure (counts). Appends the truth of plans that start.
  void Generate(int32_t* flow, int32_t* pressure, int n, std::vector<TruthEvent>& truth);

  ops::TimeUs SampleTime(int64_t index) const { return start_us_ + index * 40'000; }

 private:
  void StartBreath();

  PatientProfile profile_;
  ops::TimeUs start_us_;
  Rng rng_;
  NoiseSource noise_;
  std::vector<NivPlan> plans_;
  size_t first_plan_ = 0;
  int64_t next_sample_ = 0;
  bool inspiring_ = false;
  double tau_ = 0, ti_ = 1, te_ = 2, insp_peak_ = 0, exp_peak_ = 0, decay_ = 1, exp_factor_ = 1;
  double pressure_ = 0;
  double background_leak_ = 2;
  uint32_t cardio_acc_ = 0, cardio_inc_ = 0;
};

}  // namespace vigil::sim
