// Single-lead ECG at 250 Hz in ADC counts (0.005 mV per count, 12-bit: -2048..2047, i.e.
// +-10.24 mV), beat by beat.
//
// Model (after McSharry et al. 2003, "A dynamical model for generating synthetic
// electrocardiogram signals", IEEE TBME 50(3)): each beat is a sum of Gaussians for P, Q, R, S
// and T placed relative to the R peak; the T wave moves and widens with sqrt(RR) (QT rate
// dependence) and P sits at a fixed PR interval. The RR tachogram carries the two spectral
// peaks of heart-rate variability: respiratory sinus arrhythmia at the breathing frequency and
// Mayer waves at 0.1 Hz, plus an AR(1) residue. Instead of integrating the ODE per sample, beat
// shapes are rendered once into templates (T waves per 20 ms RR bucket) and added into a ring
// buffer: generation is a few additions per sample, no allocation, no virtual call.
// On top: respiration-coupled baseline wander and QRS amplitude modulation, 50 Hz mains, EMG
// (white Gaussian) noise, and the injected events (see simulator/truth.h).
//
// Threading: one generator per patient, used by one thread at a time. Not copyable (large).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "operators/core/time.h"
#include "simulator/device_event.h"
#include "simulator/patient_profile.h"
#include "simulator/random.h"
#include "simulator/truth.h"

namespace vigil::sim {

// A planned ECG condition. `count` is the number of beats (VT), `rate_bpm` the ventricular or
// sinus rate (VT, BRADY, TACHY, AFIB), `level` a kind-specific size (NOISE amplitude in mV).
struct EcgPlan {
  TruthKind kind{};
  ops::TimeUs start_us = 0;
  ops::TimeUs end_us = 0;
  double rate_bpm = 0;
  int count = 0;
  double level = 0;
};

class EcgGenerator {
 public:
  static constexpr double kRateHz = 250;
  static constexpr double kGainMv = 0.005;
  static constexpr int32_t kAdcMin = -2048;
  static constexpr int32_t kAdcMax = 2047;

  EcgGenerator(const PatientProfile& profile, ops::TimeUs start_us, uint64_t seed);
  EcgGenerator(const EcgGenerator&) = delete;
  EcgGenerator& operator=(const EcgGenerator&) = delete;

  // Adds a planned condition. Plans must come in start order and not overlap (the planner
  // keeps >= 20 s between them); a plan whose start is already generated is ignored.
  void Schedule(const EcgPlan& plan);
  // Device time up to which plans are needed before the next Generate of `n` samples.
  ops::TimeUs PlanningHorizon(int n) const;

  // Writes the next `n` samples (counts) to `out`; appends device events (lead off / on) and
  // the truth of conditions that became known (beat-based ones - pause, asystole, VT, PVC -
  // with their realised interval once it is complete).
  void Generate(int32_t* out, int n, std::vector<SimDeviceEvent>& events,
                std::vector<TruthEvent>& truth);

  int64_t next_sample() const { return next_sample_; }
  // Device time of sample `index` (4 ms per sample).
  ops::TimeUs SampleTime(int64_t index) const { return start_us_ + index * 4000; }

 private:
  enum class BeatKind : uint8_t { kSinus, kConductedNoP, kVentricular };
  static constexpr int kRing = 4096;  // 16 s: longer than any beat span plus pause
  void RenderBeat(int64_t r_sample, BeatKind kind, double rr_s);
  void ScheduleBeats(int64_t until_sample, std::vector<TruthEvent>& truth);
  double SinusRr(int64_t r_sample);
  const EcgPlan* PlanAt(int64_t sample, TruthKind kind) const;
  int64_t ToSample(ops::TimeUs t) const;

  PatientProfile profile_;
  ops::TimeUs start_us_;
  Rng rng_;          // beat decisions (RR, PVCs)
  Rng effects_rng_;  // sample-wise effects: separate, so block sizes do not change the output
  NoiseSource noise_;
  NoiseSource effects_noise_;
  std::vector<EcgPlan> plans_;  // pending and active, in start order
  size_t first_plan_ = 0;       // plans before this index have ended
  std::array<float, kRing> ring_{};
  int64_t next_sample_ = 0;
  int64_t next_r_ = 0;  // sample of the next R peak to render
  int64_t last_r_ = -1;
  double last_rr_s_ = 0.8;
  double ar_ = 0;    // AR(1) residue of the RR tachogram
  int vt_left_ = 0;  // ventricular beats left in the current VT run
  double vt_rr_ = 0.5;
  bool next_is_pvc_ = false;
  double after_pvc_rr_ = 1;
  double vf_gain_ = 1;
  TruthEvent vt_truth_;
  double rsa_amp_, mayer_amp_, mayer_phase_, resp_phase0_;
  double pvc_per_beat_;  // isolated PVC probability per sinus beat
  double pvc_gain_;
  uint32_t resp_acc_ = 0, resp_inc_ = 0;    // baseline wander phase (respiration)
  uint32_t drift_acc_ = 0, drift_inc_ = 0;  // slow electrode drift
  uint32_t f_acc_ = 0, f_inc_ = 0;          // AF f-wave oscillator
  std::array<uint32_t, 3> vf_acc_{}, vf_inc_{};
  float mains_[5]{};
  float motion_ = 0, motion_target_ = 0;
};

}  // namespace vigil::sim
