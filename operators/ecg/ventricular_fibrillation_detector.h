// Ventricular fibrillation and flutter from the waveform. QRS detection fails in VF, so this
// detector never looks at beats: it judges the band-passed ECG (1-30 Hz, 2nd-order Butterworth
// sections; group delay < 30 ms, negligible at the 1 s resolution of the decision) in windows
// of `window_s`, one every `step_s`, with two complementary features:
//   - VF filter leakage (Kuo & Dillman, Computers in Cardiology 1978; evaluated by Amann,
//     Tratnig & Unterkofler, BioMed Eng OnLine 4:60, 2005): a notch at the window's mean
//     frequency removes most of a sine-like fibrillatory signal; a QRS train leaks through.
//   - phase-space box counting (Amann, Tratnig & Unterkofler, IEEE TBME 54(1):174-177, 2007,
//     the "TD" algorithm): the delay plot (x(t), x(t + tau)) of a normalised window fills many
//     boxes of a 40 x 40 grid in VF, while sinus rhythm stays near a line with narrow spikes.
// A window is fibrillatory when the leakage is at most `leakage_max`, the box fraction at
// least `boxes_min`, the amplitude (5-95 % range) at least `min_amplitude_mv` (smaller is fine
// VF or asystole, not something to call VF on) and every block of it had usable quality (no VF
// in lead off, flat line, saturation or noise). An episode is confirmed when fibrillatory
// windows have covered `min_s` (default 4 s, the EDAN rule) over at least `confirm_windows`
// consecutive windows, and is reported as VFL when the mean leakage of its windows is at most
// `flutter_leakage_max` (a regular sine-like wave), else VF. Its start is the start of the
// first fibrillatory window; its end the middle of the last one's newest step.
#pragma once

#include <cstdint>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/parameters.h"
#include "operators/core/signal.h"
#include "operators/core/snapshot.h"
#include "operators/ecg/episode_tracker.h"

namespace vigil::ecg {

struct VentricularFibrillationOptions {
  double window_s = 4.0;
  double step_s = 1.0;
  double leakage_max = 0.62;
  double boxes_min = 0.23;
  double min_amplitude_mv = 0.15;
  double flutter_leakage_max = 0.30;
  double min_s = 4.0;
  int confirm_windows = 2;
  double clear_s = 2.0;
  // Organised-rhythm veto, applied by the rhythm analyzer through `usable`: when the beats of
  // the window (at least 3) come at a median rate below this, with at least half of the
  // intervals within 15 % of the median, the heart is beating in an organised rhythm (wide paced
  // or ventricular complexes can look fibrillatory to the waveform features). 0 disables.
  double organized_rate_max_bpm = 150;
};

// Keys "vf_*" of ecg.arrhythmia (step_s follows quality_block_s).
const ops::ParameterTable<VentricularFibrillationOptions>& VfParameters();

struct VfWindowFeatures {
  ops::TimeUs start_us = 0;
  ops::TimeUs end_us = 0;
  double leakage = 1;
  double boxes = 0;
  double amplitude_mv = 0;
  double step_max_slope_mv_s = 0;  // steepest slope in the newest step (QRS-like activity)
  double step_p2p_mv = 0;          // peak-to-peak of the newest step
  bool usable = false;
  bool fibrillatory = false;
};

class VentricularFibrillationDetector {
 public:
  // Throws ops::OptionError naming the field (prefix "vf_") and value.
  static VentricularFibrillationDetector Make(const VentricularFibrillationOptions& options);
  const VentricularFibrillationOptions& options() const { return options_; }

  struct State {
    double sample_rate_hz = 0;
    double z[4] = {0, 0, 0, 0};  // two biquads' direct-form-II-transposed memories
    std::vector<float> window;   // ring of the last window_s of filtered samples
    uint64_t written = 0;        // samples written into the ring since the last reset
    ops::SampleAnchor anchor;    // ring index <-> device time (follows the chunks)
    uint64_t since_step = 0;
    ops::TimeUs next_sample_us = 0;
    int consecutive = 0;
    double leakage_sum = 0;
    EpisodeTracker tracker;
    ops::EpisodeKind open_kind = ops::EpisodeKind::kVentricularFibrillation;
    ops::TimeUs last_fibrillatory_end_us = 0;  // end of the newest fibrillatory window
    VfWindowFeatures last;
    void Save(ops::SnapshotWriter& w) const;
    void Load(ops::SnapshotReader& r);
  };

  // Consumes raw ECG (mV). `usable(from, to)` answers whether signal quality allowed analysis
  // over [from, to). Windows evaluated are appended to `windows` when it is not null.
  template <typename UsableFn>
  void Process(State& state, const ops::Chunk& chunk, UsableFn&& usable, ops::Events& out,
               std::vector<VfWindowFeatures>* windows = nullptr) const;
  void OnGap(State& state, ops::Events& out) const;
  void Finish(State& state, ops::Events& out) const;

  // Peak-to-peak of the filtered signal over [from_us, to_us] as far as the ring still holds
  // it; NaN when it holds none of it. Used for QRS amplitudes at beat times.
  static float FilteredPeakToPeak(const State& state, ops::TimeUs from_us, ops::TimeUs to_us);

  // Features of one window of filtered samples (oldest first). Pure, exposed for tests.
  static VfWindowFeatures Features(const std::vector<float>& x, double sample_rate_hz);

 private:
  explicit VentricularFibrillationDetector(const VentricularFibrillationOptions& o) : options_(o) {}
  // Band-passes `x` into the window ring (NaN as 0: quality flags such a block as lead off,
  // the filter stays finite) and advances `written` and `since_step`.
  void FilterInto(State& s, std::span<const float> x) const;
  void Reset(State& s, double sample_rate_hz) const;
  void Step(State& s, bool usable, ops::Events& out, std::vector<VfWindowFeatures>* windows) const;
  void Close(State& s, ops::Events& out) const;
  ops::Explanation Explain(const State& s) const;
  VentricularFibrillationOptions options_;
};

template <typename UsableFn>
void VentricularFibrillationDetector::Process(State& s, const ops::Chunk& chunk, UsableFn&& usable,
                                              ops::Events& out,
                                              std::vector<VfWindowFeatures>* windows) const {
  if (chunk.values.empty()) return;
  if (s.sample_rate_hz != chunk.sample_rate_hz || s.window.empty()) {
    Reset(s, chunk.sample_rate_hz);
  }
  s.anchor.OnChunk(static_cast<int64_t>(s.written), chunk.first_sample_us, chunk.sample_rate_hz);
  const auto step = static_cast<uint64_t>(options_.step_s * s.sample_rate_hz + 0.5);
  const size_t n = chunk.values.size();
  for (size_t i = 0; i < n;) {
    // Filter up to the next step boundary in one run, then judge the window there.
    const auto run = static_cast<size_t>(std::min<uint64_t>(n - i, step - s.since_step));
    FilterInto(s, chunk.values.subspan(i, run));
    i += run;
    if (s.since_step >= step) {
      s.since_step = 0;
      s.next_sample_us =
          ops::SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
      const auto start_us = s.next_sample_us - ops::FromSeconds(options_.window_s);
      const bool ok = s.written >= s.window.size() && usable(start_us, s.next_sample_us);
      Step(s, ok, out, windows);
    }
  }
  s.next_sample_us = chunk.end_us();
}

}  // namespace vigil::ecg
