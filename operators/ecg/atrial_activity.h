// Atrial activity before each QRS complex: the evidence for or against P waves that the RR
// series alone cannot give (AF is "irregular RR without P waves"; atrial premature beats,
// sinus arrhythmia and flutter with variable conduction are irregular too, but keep an atrial
// wave locked to the QRS).
//
// Each beat carries the conditioned ECG of its PR interval (`kLeadS` to `kEndS` before the R
// peak, box-car decimated to <= 130 Hz). Over a beat window, the P-wave coherence is the mean,
// over the beats, of the correlation of a beat's segment with the sum of the other beats'
// segments (leave-one-out; each segment first-differenced and mean-removed, so that the T-wave
// tail and baseline drift, which follow the QRS in fibrillation too, weigh little). A P wave
// at a fixed PR interval adds up coherently: sinus rhythm on MIT-BIH 201 scores a median 0.84;
// fibrillatory waves are not locked to the QRS and score about 0 (201 and 203 AF: 0.02). This
// is the P-wave morphology feature of Babaeizadeh, Gregg, Helfenbein, Lindauer & Zhou,
// "Improvements in atrial fibrillation detection for real-time monitoring",
// J Electrocardiol 42(6):522-526, 2009 (there a correlation with a running P-wave template),
// in a template-free form that needs no learning period and no sinus beat to start from;
// compare Ladavich & Ghoraani, "Rate-independent detection of atrial fibrillation by
// statistical modeling of atrial activity", Biomed Signal Process Control 18:274-281, 2015,
// who judge the same TQ/PR stretch.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <span>

#include "operators/core/snapshot.h"

namespace vigil::ecg {

struct AtrialSegment {
  static constexpr double kLeadS = 0.30;  // segment start before the R peak
  static constexpr double kEndS = 0.07;   // segment end before the R peak (before QRS onset)
  static constexpr double kMaxRateHz = 130;
  static constexpr size_t kMaxSamples = 40;
  std::array<float, kMaxSamples> values{};
  // `values` first-differenced and mean-removed, as PWaveCoherence correlates them: computed
  // once per beat by Prepare (ExtractAtrialSegment and Load call it), not at every window the
  // beat is part of.
  std::array<float, kMaxSamples> centred{};
  // RMS second difference of `values` (the noise between the beats that the AF detector weighs
  // against the QRS amplitude); NaN when fewer than 4 samples. Computed by Prepare too.
  double rms_second_difference = NAN;
  uint8_t size = 0;  // 0: not known (no signal at the beat)

  void Prepare();

  // Decimation factor and segment length at sampling rate `fs`.
  static int Factor(double fs);
  static int Length(double fs);
  void Save(ops::SnapshotWriter& w) const;
  void Load(ops::SnapshotReader& r);  // throws ops::SnapshotError
};

// Fills `segment` from `signal(index)` (conditioned samples; `r_index` the R peak's index).
template <typename SignalFn>
AtrialSegment ExtractAtrialSegment(SignalFn&& signal, int64_t r_index, double fs) {
  AtrialSegment s;
  const int factor = AtrialSegment::Factor(fs);
  const int n = AtrialSegment::Length(fs);
  const auto first = r_index - static_cast<int64_t>(AtrialSegment::kLeadS * fs + 0.5);
  for (int k = 0; k < n; ++k) {
    float sum = 0;
    for (int j = 0; j < factor; ++j) sum += signal(first + int64_t{k} * factor + j);
    s.values[static_cast<size_t>(k)] = sum / static_cast<float>(factor);
  }
  s.size = static_cast<uint8_t>(n);
  s.Prepare();
  return s;
}

// Mean leave-one-out correlation of the known segments (see above); NaN when fewer than
// `min_known` segments of equal length are known. Pure; reads `centred`.
double PWaveCoherence(std::span<const AtrialSegment* const> segments, size_t min_known);

// Whether what is coherent in the segments stays locked to the QRS whatever the preceding RR
// interval: the known segments are split at their median preceding interval `rr_s[i]`, and this
// is the correlation of the shorter half's summed segment with the longer half's. A P wave sits
// at a fixed PR interval, so both halves show it. At fast
// rates the segment starts inside the previous beat's T wave, whose place in the segment moves
// with the interval: in AF both halves show the T-wave tail at different places and correlate
// weakly. NaN when fewer than 6 segments of equal length are known. Pure; reads `centred`.
double PWaveRateLock(std::span<const AtrialSegment* const> segments, std::span<const float> rr_s);

}  // namespace vigil::ecg
