// Atrial fibrillation episodes from the RR series, after Petrenas, Marozas & Sornmo,
// "Low-complexity detection of atrial fibrillation in continuous long-term monitoring",
// Comput Biol Med 65:184-191, 2015 (8-beat window; Se 97.1 %, Sp 98.3 % on the MIT-BIH AF
// database). The default window here is 12 beats: with the regularity test of step 3 it scored
// better on the CinC 2017 development records (F1 0.61 against 0.47 with 8) at a few beats more
// onset delay. Like that detector it uses ectopic-beat handling, bigeminy suppression and an RR
// irregularity measure over a short beat window with a smoothed threshold decision; it differs
// where the streaming pipeline offers more (beat labels, the waveform) and where single-lead
// ambulatory data (CinC 2017) showed what fakes AF. Fully described here:
//   1. Left out: intervals ending at or following a ventricular beat (the beat classifier's V
//      label; with `exclude_supraventricular`, also S), intervals at beats in unusable signal,
//      and intervals outside [min_rr_s, max_rr_s].
//   2. Irregularity over the last `window_beats` intervals r (at the start of a stream, or after
//      a gap, as soon as `min_window_beats` are there, so that short recordings get a verdict):
//      for each lag l in 1..`max_lag`, the median of |r_i - r_{i-l}| over the window; the
//      smallest of these medians, divided by the window's mean interval. A rhythm that repeats
//      every 2 or 3 intervals (bigeminy, trigeminy) scores low at its lag; AF, having no period,
//      scores high at every lag.
//   3. P waves (atrial_activity.h): the P-wave coherence of the last `p_wave_beats` accepted
//      beats' PR-interval segments. Above `p_wave_coherence_max` an atrial wave is locked to the
//      QRS complexes (sinus arrhythmia, atrial premature beats, ectopic atrial rhythm): the
//      measure is 0. This is the P-wave morphology criterion that Babaeizadeh et al. (J
//      Electrocardiol 42:522-526, 2009) added to RR irregularity to cut false AF alarms; on the
//      CinC 2017 development records it raised +P from 63 % to 77 %. At fast rates (median
//      interval of those beats below `p_wave_lock_max_rr_s`, 0.5 s: 120 bpm) the segment,
//      which starts 0.30 s before the R peak, starts 0.20 s after the previous one, inside its
//      T wave, and in AF that T-wave tail is coherent too. There the atrial wave must also
//      stay locked to the QRS whatever the preceding interval (PWaveRateLock: the segments of
//      the shorter and of the longer preceding intervals correlate by at least
//      `p_wave_lock_min`); a tail that moves with the interval is not a P wave. On the CinC
//      2017 development records this took 2 AF records out of the misses and called no other
//      record AF (F1 0.787 -> 0.797, the same for a lock limit of 0.3 to 0.5); a rate limit of
//      0.55 s gave the same CinC result but 16 s more false AF on MIT-BIH 106, 0.6 s one more
//      false CinC call, so the limit is the fastest of the three.
//   4. Ectopy on a regular rhythm: when more than `regular_fraction_max` of the window's intervals
//      lie within `regular_tolerance` of its median interval, the rhythm underneath is regular
//      and the irregularity comes from premature beats: the measure is 0. Where the P-wave
//      coherence is below `p_wave_absent_max` (no P waves) the limit is
//      `regular_fraction_max_no_p`: fast AF has many intervals close to its median.
//   5. Beat reliability: when the QRS amplitudes of the window's beats vary by more than
//      `amplitude_cv_max` (coefficient of variation), the "beats" include artefacts or T waves
//      and their irregularity proves nothing: the measure is 0.
//   6. RR entropy: where the irregularity could start or keep an episode (at or above
//      `threshold * release`), the coefficient of sample entropy (COSEn) of the last
//      `entropy_beats` intervals: SampEn(m = 1, tolerance `entropy_tolerance_s`) + ln(2 *
//      tolerance) - ln(mean interval), after Lake & Moorman, "Accurate estimation of entropy in
//      very short physiological time series: the problem of atrial fibrillation detection in
//      implanted ventricular devices", Am J Physiol Heart Circ Physiol 300:H319-H325, 2011 (16
//      beats, m = 1). Below `entropy_min` the irregularity repeats itself - a few interval
//      lengths in a recurring order, as premature beats with their pauses, or trigeminy, give -
//      and is not the unstructured irregularity of AF: the measure is 0. Their 30 ms tolerance
//      lost CinC 2017 AF records that 40 ms keeps; with 40 ms and -1.8 the CinC F1 went from
//      0.770 to 0.773 (one "other rhythm" record fewer called AF), MIT-BIH unchanged.
//   7. Noise between the beats: where step 6 is computed, the median over the window's beats of
//      the RMS second difference of the PR-interval segment (atrial_activity.h; ~100-130 Hz
//      after decimation, so this weighs the 20-50 Hz muscle and motion noise band, far above
//      P and f waves) divided by the beat's QRS amplitude. Above `atrial_noise_max` the noise
//      jitters the fiducials, fakes or hides beats and masks P waves, so neither the RR nor the
//      P-wave evidence holds: the measure is 0. Noisy recordings are the class that fakes
//      rhythm features in the CinC 2017 data (Clifford et al., "AF classification from a short
//      single lead ECG recording: the PhysioNet/Computing in Cardiology Challenge 2017",
//      Comput Cardiol 44, 2017); the signal-quality stage judges absolute noise, this the noise
//      relative to the beats, as step 5 judges their amplitudes. On CinC 2017 it took 2 noisy
//      records out of the AF calls (F1 0.773 -> 0.779; the same from 0.10 to 0.12, AF records'
//      medians are below 0.03), MIT-BIH unchanged.
//   8. Decision: the measure is smoothed exponentially (`smoothing`) and compared with
//      `threshold` to start, with `threshold * release` to end (hysteresis).
// The episode is opened when the smoothed measure crosses the threshold, with its start set back
// to the first beat of the window, but by no more than twice the time the window's intervals
// cover (left-out beats can stretch a window over a long stretch that was not judged), never
// into the previous episode and never past the last beat whose full P-wave window had P waves
// (step 3: that window showed an atrial wave locked to the QRS over the beats before it); it is
// closed when the measure falls below the release level and does not cross the threshold again
// within `close_hold_s` (30 s: a break shorter than the shortest AF episode does not split one),
// its end set back by half a window from where it fell, or when more than `window_beats`
// intervals in a row are left out (signal too poor to tell).
// Every episode is reported, however short; the alert stage applies the >= 30 s AF episode
// rule. The explanation carries the measure, the heart rate and the AF burden (AF time over
// analysed time) of the stream so far.
#pragma once

#include <cmath>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>

#include "operators/core/event.h"
#include "operators/core/parameters.h"
#include "operators/core/snapshot.h"
#include "operators/core/tree_ensemble.h"
#include "operators/ecg/af_model.h"
#include "operators/ecg/atrial_activity.h"

namespace vigil::ecg {

struct AtrialFibrillationOptions {
  int window_beats = 12;
  // At the start of a stream (and after a gap) the window grows from this size (0: none).
  int min_window_beats = 6;
  int max_lag = 1;
  // 1: intervals at supraventricular ectopic beats (classifier label S) are left out too. Off by
  // default: a classifier that labels by prematurity calls many AF beats S.
  bool exclude_supraventricular = false;
  double regular_tolerance = 0.05;
  double regular_fraction_max = 0.35;
  double amplitude_cv_max = 0.25;
  double threshold = 0.10;
  double release = 0.8;
  double smoothing = 0.3;  // weight of the newest value in the exponential average
  double min_rr_s = 0.24;
  double max_rr_s = 2.5;
  // P-wave coherence (atrial_activity.h) above which the window has P waves: not AF.
  double p_wave_coherence_max = 0.3;
  // Below this coherence the window has no P waves: the regularity veto allows up to
  // `regular_fraction_max_no_p` (fast AF has many intervals close to its median).
  double p_wave_absent_max = 0.2;
  double regular_fraction_max_no_p = 0.7;
  int p_wave_beats = 20;  // beats over which the P-wave coherence is judged
  // Step 3 at fast rates: below this median interval the coherent P-wave segments must also
  // correlate across short and long preceding intervals by at least `p_wave_lock_min`.
  double p_wave_lock_max_rr_s = 0.5;
  double p_wave_lock_min = 0.4;
  // Step 6: COSEn below this is a recurring pattern, not AF (-100: off).
  double entropy_min = -1.8;
  int entropy_beats = 16;
  double entropy_tolerance_s = 0.04;
  // Step 7: noise between the beats relative to the QRS amplitude above which RR and P-wave
  // evidence is not trusted.
  double atrial_noise_max = 0.10;
  // An episode whose measure falls below the release level closes only when it has not risen
  // above `threshold` again within this time (0: at once); AF that resumes is the same episode.
  // 30 s, the minimum duration of an AF episode (CLINICAL.md): a break shorter than an episode
  // could be does not split one (MIT-BIH 203: 20 -> 9 episodes, AF duration Se 87 -> 93 %).
  double close_hold_s = 30;
  // 1: the measure is the trained model's AF probability for the window (af_model.h), compared
  // with `probability_min` (steps 2-7 become its inputs, the decision of step 8 stays);
  // 0: the rules of steps 2-8 with `threshold`.
  bool use_model = true;
  double probability_min = 0;  // 0: the model's operating point
  // 1: with the model, a window whose rhythm underneath is regular (step 4) or whose
  // irregularity recurs in a pattern (step 6) still scores 0: ectopy on a regular rhythm, which
  // the CinC 2017 training records hold too little of for the model to learn.
  bool model_vetoes = true;
  // 1: every window's model inputs (and probability) are emitted as measurements
  // "af_feature.<name>" / "af_probability": what training reads (`vigil replay --measurements`).
  bool feature_trace = false;
};

// Keys "af_*" of ecg.arrhythmia.
const ops::ParameterTable<AtrialFibrillationOptions>& AfParameters();

// COSEn of `rr` (step 6 above); +infinity when no pair of intervals matches (no structure at
// all). Pure.
double CoefficientOfSampleEntropy(std::span<const double> rr, double tolerance_s);

class AtrialFibrillationDetector {
 public:
  // Throws ops::OptionError naming the field (prefix "af_") and value.
  static AtrialFibrillationDetector Make(const AtrialFibrillationOptions& options);
  const AtrialFibrillationOptions& options() const { return options_; }

  struct Interval {
    ops::TimeUs end_us = 0;  // time of the beat that ends the interval
    float rr_s = 0;
    float amplitude_mv = 0;  // QRS amplitude of that beat (NaN: unknown)
    AtrialSegment atrial;    // its PR-interval segment (size 0: unknown)
  };
  // What a full window of intervals shows (steps 2-4 and the P-wave coherence).
  struct WindowFeatures {
    double irregularity = 0;        // step 2, before any veto
    double regular_fraction = 0;    // step 3
    double amplitude_cv = 0;        // step 4 (0 when unknown)
    double p_wave_coherence = NAN;  // NaN when too few segments are known
    double p_wave_lock = NAN;       // step 3 at fast rates (NaN when not needed or unknown)
    double rr_entropy = NAN;        // step 6 (NaN when not needed or too few intervals)
    double atrial_noise = NAN;      // step 7 (NaN when not needed or unknown)
    // Computed for every window (inputs of the trained model, af_model.h):
    double heart_rate_bpm = 0;         // 60 / the window's mean interval
    double successive_difference = 0;  // RMS of successive interval differences / mean interval
    double coverage = 1;  // the window's intervals over the time from its first beat to its last
                          // (below 1 where beats were left out)
    // Over the last kAfContextBeats accepted intervals (NaN when fewer than half are there): the
    // longer view a record-level classifier has, as the CinC 2017 entries used it.
    double irregularity_long = NAN;           // as `irregularity`
    double successive_difference_long = NAN;  // as `successive_difference`
    double rr_entropy_long = NAN;             // COSEn
    double turning_point_ratio = NAN;  // local extrema / (n - 2) (Dash et al. 2009; AF ~ 2/3)
    double shannon_entropy = NAN;      // of the RR histogram, 16 bins, normalised (Dash et al.)
  };
  struct State {
    std::deque<Interval> intervals;  // accepted, newest last (window + 2 for the differences)
    bool previous_ventricular = false;
    bool previous_unusable = false;
    int left_out_in_a_row = 0;
    double smoothed = 0;
    bool primed = false;
    bool open = false;
    ops::TimeUs start_us = 0;
    ops::TimeUs last_irregular_us = 0;  // newest beat at which the measure exceeded release
    ops::TimeUs last_end_us = 0;        // end of the last closed episode
    ops::TimeUs last_p_wave_us = 0;     // newest beat whose full P-wave window had P waves
    double af_us = 0;                   // burden bookkeeping
    double analysed_us = 0;
    double last_irregularity = 0;
    double last_p_wave_coherence = NAN;
    // Closing: the measure fell below release at `closing_since_us`; the episode ends at
    // `closing_end_us` unless AF resumes within `close_hold_s`. `held_af_us`: burden counted
    // since, taken back if it closes.
    bool closing = false;
    ops::TimeUs closing_since_us = 0;
    ops::TimeUs closing_end_us = 0;
    double held_af_us = 0;
    void Save(ops::SnapshotWriter& w) const;
    void Load(ops::SnapshotReader& r);
  };

  // One beat with its label; `usable` is false when the signal at the beat was unusable;
  // `amplitude_mv` its QRS peak-to-peak amplitude (NaN when unknown: the check is skipped).
  // `atrial` is the beat's PR-interval segment (null: unknown).
  void OnBeat(State& state, const ops::Beat& beat, bool usable, float amplitude_mv,
              const AtrialSegment* atrial, ops::Events& out) const;
  // The features of a full window of intervals, oldest first (window_beats + max_lag entries).
  // `complete`: every feature (the model's inputs); otherwise steps 6 and 7, and the P-wave
  // lock, only where the rules need them.
  WindowFeatures Features(const std::deque<Interval>& intervals, bool complete = false) const;
  // The measure compared with the threshold: the irregularity, 0 when a veto applies.
  double Measure(const WindowFeatures& f) const;
  // Step 4: a regular rhythm underneath.
  bool RegularVeto(const WindowFeatures& f) const;
  // Steps 4 and 6: a regular rhythm underneath, or an irregularity that recurs in a pattern.
  bool PatternVeto(const WindowFeatures& f) const;
  // Step 3: an atrial wave locked to the QRS complexes.
  bool HasPWaves(const WindowFeatures& f) const;
  // Measure(Features(intervals)). Exposed for tests.
  double Irregularity(const std::deque<Interval>& intervals) const;
  // The longest history the model's inputs look at.
  static constexpr size_t kAfContextBeats = 32;
  // The model's inputs for `f` (kAfModelFeatures order; unknown values NaN).
  static AfModelInputs ModelInputs(const WindowFeatures& f);
  // The model served (null when use_model is 0).
  const ops::TreeEnsemble* model() const { return model_.get(); }
  // Closes an open episode (gap, end of recording) at the last irregular beat.
  void Stop(State& state, ops::Events& out) const;

 private:
  explicit AtrialFibrillationDetector(const AtrialFibrillationOptions& o);
  void Close(State& s, ops::TimeUs end_us, ops::Events& out) const;
  size_t MinWindow() const;
  // `inputs`: the window that opened the episode (its top features are named), or null.
  ops::Explanation Explain(const State& s, const AfModelInputs* inputs = nullptr) const;
  ops::Explanation ExplainModel(const State& s, const AfModelInputs* inputs) const;
  // The level the smoothed measure must cross: af_threshold, or the model's probability.
  double Threshold() const;
  AtrialFibrillationOptions options_;
  std::shared_ptr<const ops::TreeEnsemble> model_;
};

}  // namespace vigil::ecg
