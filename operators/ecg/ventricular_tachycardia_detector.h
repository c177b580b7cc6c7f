// Ventricular tachycardia runs: at least `min_beats` consecutive ventricular beats (the beat
// classifier's V label) at a rate of at least `min_rate_bpm` (EDAN monitor rule: >= 5 V beats
// at >= 100 bpm). The rate is 60 over the mean RR between the run's beats. The episode opens
// when the run qualifies (start: its first V beat) and closes at the first beat that is not
// ventricular, or not usable, with the end at the run's last V beat.
//
// Artefact veto. False arrhythmia alarms are the norm in monitoring (Drew et al., "Insights into
// the problem of alarm fatigue with physiologic monitor devices", PLoS ONE 9(10):e110274, 2014:
// 88.8 % of 12,671 annotated arrhythmia alarms were false; artefact, wide and low-amplitude QRS
// complexes among the causes). Such "beats" are slow swings of the baseline that the QRS detector
// takes for wide complexes, at irregular intervals; monomorphic VT is a fast, wide but regular
// waveform. So a qualifying run is not opened while, over its last `artifact_beats` beats,
//   - more than `artifact_low_frequency_min` of the raw signal's energy (mean removed) lies
//     below 2 Hz (what a 2nd-order Butterworth high-pass at 2 Hz, run from 1 s before the
//     first of those beats, does not pass), and
//   - the median absolute change between successive RR intervals exceeds
//     `artifact_rr_change_min` of their mean interval.
// Both must hold: slow waveforms alone (slow VT has much energy near 2 Hz) or irregularity
// alone (polymorphic VT) do not veto. The run is judged again at every further V beat and opens
// (start still its first V beat) as soon as it passes. Where the history no longer holds the
// run's stretch (a beat released late), the veto does not apply: an unjudged run alarms.
// Measured with `vigil replay` on the 1,500 CinC 2017, 26 MIT-BIH and 11 vfdb records here
// (shared/data): 36 of the 100 VT runs on CinC (no record there has VT) and 15 of the 78
// MIT-BIH / vfdb runs outside reference VT and VF were vetoed, none of the 42 runs inside
// reference VT nor of the 57 inside VF/VFL; one true VT run opened a beat later.
//
// The high-pass is settled over up to 1 s before the judged stretch (less at the start of a
// stream, from the first sample's level). The explanation of an alarm lists the artefact
// measures and the one veto limit the run did not exceed.
//
// Memory: a ring of raw samples per stream (in the snapshot) long enough for `artifact_beats`
// at `min_rate_bpm`, 1 s of settling and 2 s of beat delay: 7.8 s by default (7.8 KB at
// 250 Hz, 31 KB at 1 kHz). `vt_min_beats` must be at least 4 while the veto is on.
#pragma once

#include <cmath>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/parameters.h"
#include "operators/core/signal.h"
#include "operators/core/snapshot.h"

namespace vigil::ecg {

struct VentricularTachycardiaOptions {
  int min_beats = 5;
  double min_rate_bpm = 100;
  // Artefact veto (see above); a low-frequency limit of 1 disables it.
  double artifact_low_frequency_min = 0.5;
  double artifact_rr_change_min = 0.3;
  int artifact_beats = 8;
  // Beats of another label a run may hold between two ventricular beats (0: none).
  int max_interruptions = 0;
};

// Keys "vt_*" of ecg.arrhythmia.
const ops::ParameterTable<VentricularTachycardiaOptions>& VtParameters();

// The fraction of the energy of x[from:] (mean removed) below 2 Hz: 1 - the energy of a
// 2nd-order Butterworth high-pass at 2 Hz run over all of x (x[:from] settles it) over the
// energy of x[from:]. NaN when x[from:] has fewer than 2 samples or no energy. Pure.
double LowFrequencyFraction(std::span<const float> x, size_t from, double sample_rate_hz);

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
    std::deque<ops::TimeUs> run_times;  // the run's last `artifact_beats` beats
    int run_v_beats = 0;                // ventricular beats in the run
    int interruptions = 0;              // non-V beats since the run's last V beat
    // Artefact measures of the newest judgement (NaN: not judged).
    double low_frequency = NAN;
    double rr_change = NAN;
    // Raw signal history (NaN: invalid sample): `written` samples since the last restart.
    double sample_rate_hz = 0;
    std::vector<float> history;
    uint64_t written = 0;
    ops::SampleAnchor anchor;  // history index <-> device time (follows the chunks)
    void Save(ops::SnapshotWriter& w) const;
    // `with_interruptions`: false for the format before vt_max_interruptions (rhythm version 4).
    void Load(ops::SnapshotReader& r, bool with_interruptions = true);
  };

  // The raw ECG (mV), in time order, before the beats that fall in it. A new rate restarts
  // the history.
  void OnSamples(State& state, const ops::Chunk& chunk) const;
  void OnBeat(State& state, const ops::Beat& beat, bool usable, ops::Events& out) const;
  // Ends the run (an open episode closes at its last V beat).
  void Stop(State& state, ops::Events& out) const;
  // Samples are missing: ends the run and forgets the history.
  void OnGap(State& state, ops::Events& out) const;

  // The artefact measures of the run's last `artifact_beats` beats; NaN where the history no
  // longer holds them. Exposed for tests.
  struct ArtifactMeasures {
    double low_frequency = NAN;
    double rr_change = NAN;
  };
  ArtifactMeasures Artifact(const State& state) const;
  bool IsArtifact(const ArtifactMeasures& m) const;
  // Seconds of raw signal the history keeps (see Memory above).
  double HistoryS() const;

 private:
  explicit VentricularTachycardiaDetector(const VentricularTachycardiaOptions& o) : options_(o) {}
  ops::Explanation Explain(const State& s) const;
  VentricularTachycardiaOptions options_;
};

}  // namespace vigil::ecg
