// Transcutaneous CO2 at 1 Hz (mmHg, 0.1 mmHg per count) over one night of therapy.
//
// Shape: the awake baseline for the first 10-25 min (the patient is still awake with the mask
// on), then a smooth sleep-related rise of 2-5 mmHg over 20 min, plus an AR(1) wander
// (SD 0.3 mmHg, correlation time 60 s: tcCO2 is slow). A night's plan may add one trapezoid
// episode (ramp up, plateau, ramp down) that either meets the AASM sleep-hypoventilation rule
// for >= 12 min (kHypoventilation) or stays just under it (kNearMiss: a peak 1.2-2 mmHg below
// the rule's threshold for a long time, or above it for only 6.5-8 min).
// The rule (CLINICAL.md): CO2 > 55 for >= 10 min, or >= 10 above the awake baseline and > 50
// for >= 10 min, i.e. CO2 above min(55, max(50, baseline + 10)). Truth intervals are where the
// noise-free curve is above that threshold; margins keep noise from changing the verdict.
//
// Threading: one generator per night, used by one thread at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "operators/core/time.h"
#include "simulator/patient_profile.h"
#include "simulator/random.h"
#include "simulator/truth.h"

namespace vigil::sim {

struct Co2NightPlan {
  Co2Night night = Co2Night::kNormal;
  double awake_mm_hg = 42;
  double sleep_onset_s = 900;
  double sleep_rise_mm_hg = 3;
  double episode_start_s = 0;  // from the session start; episode absent when peak == 0
  double ramp_s = 600;
  double plateau_s = 0;
  double peak_mm_hg = 0;

  // The rule's threshold for this patient: min(55, max(50, awake + 10)).
  double RuleThreshold() const;
  // The noise-free tcCO2 at `s` seconds after the session start.
  double Level(double s) const;
};

// Plans a night of `duration_s` for `profile` (its Co2Night decides the episode). Appends the
// truth (HYPOVENTILATION or HYPOVENTILATION_NEAR_MISS, times from `session_start_us`) when the
// episode fits into the night.
Co2NightPlan PlanCo2Night(const PatientProfile& profile, double duration_s, Rng& rng,
                          ops::TimeUs session_start_us, std::vector<TruthEvent>& truth);

class Co2Generator {
 public:
  static constexpr double kRateHz = 1;
  static constexpr double kGainMmHg = 0.1;
  Co2Generator(const Co2NightPlan& plan, uint64_t seed) : plan_(plan), rng_(seed) {}
  // Next `n` one-second samples (counts).
  void Generate(int32_t* out, int n);

 private:
  Co2NightPlan plan_;
  Rng rng_;
  int64_t next_sample_ = 0;
  double wander_ = 0;
};

}  // namespace vigil::sim
