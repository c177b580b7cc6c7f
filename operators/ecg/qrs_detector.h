// Streaming QRS detector for one ECG lead at any rate from 125 to 1000 Hz.
//
// Algorithm: the energy/slope detector of Pan & Tompkins (IEEE TBME 32(3):230-236, 1985) with
// the decision rules of Hamilton & Tompkins (IEEE TBME 33(12):1157-1165, 1986), written for
// arbitrary sampling rates and chunk boundaries:
//   1. conditioning (kept for fiducial points and beat classification): baseline-wander
//      high-pass, mains notch, low-pass;
//   2. detection path: 8-16 Hz Butterworth band-pass (QRS energy; rejects P/T waves, wander
//      and muscle noise; 8-16 Hz beat 5-15, 8-20 and 10-25 Hz on the MIT-BIH development
//      records, mostly through large P waves), first difference scaled to mV/s, absolute value
//      (Hamilton's choice, less dominated by single large complexes than squaring) and a
//      moving-window integral;
//   3. peaks of the integral: a local maximum confirmed when the integral has fallen to half
//      of it or after `peak_hold_s` without a higher value;
//   4. adaptive threshold DT = noise + `threshold_fraction` * (qrs - noise) from the medians
//      of the last 8 QRS and 8 noise peak heights (Hamilton & Tompkins' best estimator);
//      `refractory_s` blanking; a peak within `t_wave_s` of a beat whose maximum slope is below
//      half that beat's is a T wave; search-back: when no beat was found for
//      `searchback_factor` times the mean of the last 8 RR, the largest peak above DT/2 since
//      then is taken as a beat (Hamilton & Tompkins; Pan & Tompkins use a second threshold);
//      a beat is held for `t_wave_s` and replaced when a peak more than `replace_ratio` times
//      higher with a steeper slope follows (large P waves, e.g. MIT-BIH 108, would otherwise
//      be taken for beats before their QRS);
//   5. the fiducial point is the largest absolute deflection of the conditioned signal in a
//      window around the QRS found by the integral (the R peak, or the S/QS nadir of a
//      negative complex), then shifted back by the conditioning filter's group delay at
//      15 Hz so the reported sample index is on the input signal's time axis.
// The first `learning_s` seconds initialise the levels; peaks from that period are then
// decided with the initialised levels, so the first beats of a record are not lost.
//
// Streaming contract: Process() may be called with chunks of any size (including 0 and 1);
// the detections are identical for any chunking (the filters run over blocks of the chunk,
// then every rule is evaluated per sample in one deterministic loop). Detections come out
// with a latency of at most about `searchback_factor` x RR (search-back) and otherwise about
// `t_wave_s` + 0.1 s, always in increasing order.
//
// Threading: one QrsDetector per stream, used by one thread at a time. Errors: the
// constructor throws ops::OptionError naming the option and value; Load throws
// ops::SnapshotError from Load (detector unchanged) when the bytes do not fit these options.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "operators/core/parameters.h"
#include "operators/core/snapshot.h"
#include "operators/filters/biquad_cascade.h"

namespace vigil::ecg {

struct QrsOptions {
  double sample_rate_hz = 360;  // [125, 1000]
  // Conditioning.
  double baseline_hz = 0.5;  // high-pass corner; 0 disables
  double notch_hz = 50;      // mains; 0 disables (must be below Nyquist)
  double notch_q = 10;
  double lowpass_hz = 40;  // 0 disables (must be below Nyquist)
  // Detection.
  double band_low_hz = 8;
  double band_high_hz = 16;
  double integration_s = 0.08;  // moving-window integral length (about a QRS width)
  double peak_hold_s = 0.1;
  double threshold_fraction = 0.3125;
  double refractory_s = 0.2;
  double t_wave_s = 0.36;
  double searchback_factor = 1.5;
  double learning_s = 2.0;
  double min_slope_mv_s = 1.0;
  double replace_ratio = 1.5;  // absolute floor of the integral's peak (flat line)
};

// The configuration keys of the detector (all fields but sample_rate_hz, which comes from the
// data), with their ranges at the highest supported rate.
const ops::ParameterTable<QrsOptions>& QrsParameters();

// Throws ops::OptionError for an option out of range, naming "ecg.arrhythmia.<key>" and the
// value, or "qrs.sample_rate_hz" for a rate outside 125-1000 Hz. Corners too close to the
// rate's Nyquist frequency are errors here; EcgMonitor lowers them per rate before.
void ValidateQrsOptions(const QrsOptions& options);

struct QrsDetection {
  int64_t sample = 0;             // fiducial point on the input's sample axis (delay corrected)
  int64_t conditioned_index = 0;  // the same point in the conditioned signal (see Conditioned)
  float amplitude_mv = 0;         // conditioned signal at the fiducial point (signed)
  float peak_height = 0;          // integral peak (mV/s)
  bool searchback = false;        // found by search-back
};

class QrsDetector {
 public:
  explicit QrsDetector(const QrsOptions& options);

  // Consumes the next samples (mV; NaN = invalid, held at the last valid value), appends the
  // beats decided during this call to `out`.
  void Process(std::span<const float> samples, std::vector<QrsDetection>& out);

  // The stream lost samples: emits the beat still held (see replace_ratio), restarts the
  // filters and the peak search, keeps the learnt levels and forgets the last beat (no RR
  // interval spans a gap). Sample indices continue.
  void Restart(std::vector<QrsDetection>& out);
  // End of the stream: emits the beat still held. Processing may continue afterwards.
  void Flush(std::vector<QrsDetection>& out);

  // Samples consumed so far (the input index of the next sample).
  int64_t samples_seen() const { return n_; }
  // Conditioned signal at `index` (input index minus the conditioning delay is its time).
  // Valid for index in [samples_seen() - ring capacity, samples_seen()); 0 outside.
  float Conditioned(int64_t index) const {
    if (index < 0 || index >= n_ || index < n_ - ring_capacity()) return 0;
    return ring_[static_cast<size_t>(index) & (ring_.size() - 1)];
  }
  // out[i] = Conditioned(first + i) for every i, copied in at most two runs of the ring.
  void CopyConditioned(int64_t first, std::span<float> out) const;
  int64_t ring_capacity() const { return static_cast<int64_t>(ring_.size()); }
  // Group delay of the conditioning filter at 15 Hz, in samples (rounded), as subtracted from
  // the fiducial point.
  int conditioning_delay() const { return cond_delay_; }
  const QrsOptions& options() const { return options_; }

  void Save(ops::SnapshotWriter& w) const;
  void Load(ops::SnapshotReader& r);  // throws ops::SnapshotError

 private:
  struct Peak {
    int64_t index = 0;  // index of the integral's maximum
    float height = 0;
    float slope = 0;   // max |derivative| on the rising edge
    uint8_t kind = 0;  // 0 pending/noise, 1 beat
  };
  static constexpr int kLevels = 8;
  static constexpr int kPeakHistory = 64;

  // Samples are processed in blocks: first every filter over the block (FilterBlock, filter
  // state in registers), then the per-sample decision rules (DecideBlock).
  static constexpr size_t kBlock = 256;
  static constexpr size_t kBandSections = 1;  // first-order band-pass: one biquad
  template <size_t kConditioningSections>
  void ProcessInBlocks(std::span<const float> samples, std::vector<QrsDetection>& out);
  template <size_t kConditioningSections>
  void FilterBlock(std::span<const float> samples);
  void DecideBlock(size_t count, std::vector<QrsDetection>& out);
  void OnPeak(const Peak& peak, std::vector<QrsDetection>& out);
  void Decide(Peak& peak, std::vector<QrsDetection>& out);
  bool SearchBack(int64_t before_index, std::vector<QrsDetection>& out);
  void AcceptBeat(Peak& peak, bool searchback, std::vector<QrsDetection>& out);
  bool ReplacesPending(const Peak& peak) const;
  void ReplacePending(Peak& peak);
  void CommitPending(std::vector<QrsDetection>& out);
  void FinishLearning(std::vector<QrsDetection>& out);
  float Threshold() const { return threshold_; }
  // Recomputes threshold_ after qrs_levels_ or noise_levels_ changed.
  void UpdateThreshold();
  double MeanRr() const;
  void UpdateSearchBackLimit();

  QrsOptions options_;
  // Immutable after construction.
  int window_ = 1, hold_ = 1, refractory_ = 1, t_wave_ = 1, learning_ = 1, cond_delay_ = 0;
  int fiducial_before_ = 1, fiducial_after_ = 1, detect_to_centre_ = 0;
  double slope_scale_ = 1;
  filters::BiquadCascade conditioning_, band_;

  // Streaming state.
  int64_t n_ = 0;
  float last_valid_ = 0;
  float offset_ = 0;  // first valid sample since (re)start: no filter step at start
  bool primed_ = false;
  float prev_band_ = 0;
  std::vector<float> ring_;      // conditioned signal, power-of-two capacity
  std::vector<float> mwi_ring_;  // |slope| values in the integration window
  double mwi_sum_ = 0;
  float mwi_prev_ = 0;
  Peak cand_{};
  bool have_cand_ = false;
  float seg_max_slope_ = 0;
  std::array<Peak, kPeakHistory> peaks_{};
  int64_t peak_count_ = 0;  // total peaks seen (ring index = count % kPeakHistory)
  int64_t searched_peak_count_ = 0;
  std::array<float, kLevels> qrs_levels_{};
  std::array<float, kLevels> noise_levels_{};
  int64_t qrs_inserted_ = 0, noise_inserted_ = 0;
  float threshold_ = 0;  // derived from the levels (UpdateThreshold)
  std::array<double, kLevels> rr_{};
  int64_t rr_inserted_ = 0;
  int64_t searchback_samples_ = 0;  // searchback_factor x mean RR, derived from rr_
  int64_t last_beat_ = -1;          // integral-peak index of the last beat (-1 = none)
  float last_beat_slope_ = 0;
  // The last accepted beat is held for `t_wave_s` before it is emitted: a much larger complex
  // in that time replaces it (it was a P wave or an artefact before the true QRS).
  bool have_pending_ = false;
  Peak pending_{};
  bool pending_searchback_ = false;
  int64_t before_pending_ = -1;  // beat before the pending one (-1 = none)
  bool learning_done_ = false;
  float learning_max_ = 0;

  // Scratch for one block (not state): conditioned signal, |slope| and integral per sample.
  std::array<float, kBlock> block_conditioned_{}, block_slope_{}, block_integral_{};
};

}  // namespace vigil::ecg
