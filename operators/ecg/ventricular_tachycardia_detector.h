// Ventricular tachycardia runs: at least `min_beats` consecutive ventricular beats (the beat
// classifier's V label) at a rate of at least `min_rate_bpm` (EDAN monitor rule: >= 5 V beats
// at >= 100 bpm). The rate is 60 over the mean RR between the run's beats. The episode opens
// when the run qualifies (start: its first V beat) and closes at the first beat that is not
// ventricular, or not usable, with the end at the run's last V beat.
#pragma once

#include "operators/core/event.h"
#include "operators/core/snapshot.h"

namespace vigil::ecg {

struct VentricularTachycardiaOptions {
  int min_beats = 5;
  double min_rate_bpm = 100;
};

class VentricularTachycardiaDetector {
 public:
  // Throws ops::OptionError naming the field (prefix "vt_") and value.
  static VentricularTachycardiaDetector Make(const VentricularTachycardiaOptions& options);

  struct State {
    int run_beats = 0;
    double run_rr_sum_s = 0;
    ops::TimeUs run_start_us = 0;
    ops::TimeUs last_v_us = 0;
    bool open = false;
    void Save(ops::SnapshotWriter& w) const;
    void Load(ops::SnapshotReader& r);
  };

  void OnBeat(State& state, const ops::Beat& beat, bool usable, ops::Events& out) const;
  void Stop(State& state, ops::Events& out) const;

 private:
  explicit VentricularTachycardiaDetector(const VentricularTachycardiaOptions& o) : options_(o) {}
  ops::Explanation Explain(const State& s) const;
  VentricularTachycardiaOptions options_;
};

}  // namespace vigil::ecg
