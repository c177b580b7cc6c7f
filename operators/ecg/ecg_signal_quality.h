// ECG signal quality: flat line, saturation (clipping), lead off and noise, judged on the raw
// ECG (mV) in consecutive blocks of `block_s`. The raw signal is used on purpose: a band-pass
// filter would hide exactly what flat line and clipping look like.
//
// Per block the features are:
//   - lead off: more than `lead_off_nan_fraction` of the samples are NaN (the device flags them
//     invalid), or the device reported lead off (SetLeadOff);
//   - flat line: peak-to-peak below `flat_p2p_mv` (a disconnected or clamped input; a real
//     asystole keeps baseline noise and P waves above this);
//   - saturation: a run of at least `saturation_run_s` identical samples at the block's extreme,
//     far from its median (the top of a clipped complex; an isoelectric segment sits near the
//     median instead);
//   - noise: the robust high-frequency noise level - the median of |second difference| scaled to
//     the RMS of white noise (the QRS occupies < 15 % of a block, so the median ignores it) -
//     above `noise_hf_rms_mv`, or a peak-to-peak above `noise_p2p_mv` (motion artefact).
//     Li, Mark & Clifford, Physiol Meas 29:15-32, 2008 motivate judging quality per window from
//     such features; the median-of-difference estimator is this project's choice.
// Episodes (NOISE, FLAT, SATURATION, LEADOFF) open when the condition has held for `min_s`
// and close when it has been absent for `clear_s`. Every block's verdict is also kept for the
// other detectors: no asystole, pause or VF is called on an unusable signal.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/parameters.h"
#include "operators/core/signal.h"
#include "operators/core/snapshot.h"
#include "operators/ecg/episode_tracker.h"

namespace vigil::ecg {

struct SignalQualityOptions {
  double block_s = 1.0;
  double lead_off_nan_fraction = 0.5;
  double flat_p2p_mv = 0.01;
  double saturation_run_s = 0.05;
  double noise_hf_rms_mv = 0.05;
  double noise_p2p_mv = 10.0;
  double min_s = 2.0;
  double clear_s = 2.0;
};

// Keys "quality_*" of ecg.arrhythmia.
const ops::ParameterTable<SignalQualityOptions>& SignalQualityParameters();

// Block verdict bits.
enum QualityFlag : uint8_t {
  kQualityLeadOff = 1,
  kQualityFlat = 2,
  kQualitySaturated = 4,
  kQualityNoisy = 8,
};

struct QualityBlock {
  ops::TimeUs start_us = 0;
  ops::TimeUs end_us = 0;
  uint8_t flags = 0;  // QualityFlag bits; 0 = usable
  // Mean of the block's last fifth minus mean of its first fifth (raw signal, mV): how far the
  // baseline moved. Not kept in snapshots (used when the block is finished).
  float baseline_shift_mv = 0;
};

class EcgSignalQuality {
 public:
  // Throws ops::OptionError naming the field (with prefix "quality_") and value.
  static EcgSignalQuality Make(const SignalQualityOptions& options);
  const SignalQualityOptions& options() const { return options_; }

  struct State {
    double sample_rate_hz = 0;
    ops::TimeUs block_start_us = 0;
    std::vector<float> block;  // samples of the block being filled
    bool device_lead_off = false;
    std::deque<QualityBlock> recent;    // last blocks (about 20 s), oldest first
    ops::TimeUs analysed_until_us = 0;  // end of the last finished block
    ops::TimeUs last_unusable_end_us = 0;
    EpisodeTracker trackers[4];  // lead off, flat, saturation, noise
    float last_p2p_mv = 0;       // features of the last block, for the explanation
    float last_hf_rms_mv = 0;
    float last_nan_fraction = 0;
    void Save(ops::SnapshotWriter& w) const;
    void Load(ops::SnapshotReader& r);
  };

  // Consumes a raw ECG chunk; finished blocks are appended to `finished` (and episodes to out).
  void Process(State& state, const ops::Chunk& chunk, std::vector<QualityBlock>& finished,
               ops::Events& out) const;
  // Data missing in [from_us, to_us): the partial block is dropped, episodes are kept open
  // (the pipeline reports the gap itself as "signal lost").
  void OnGap(State& state, ops::TimeUs from_us, ops::TimeUs to_us) const;
  void SetLeadOff(State& state, bool off) const { state.device_lead_off = off; }
  void Finish(State& state, ops::Events& out) const;

  // Flags of the block containing `time_us` (0 when unknown: not yet analysed or too old).
  static uint8_t FlagsAt(const State& state, ops::TimeUs time_us);

 private:
  explicit EcgSignalQuality(const SignalQualityOptions& options) : options_(options) {}
  uint8_t Judge(State& state) const;
  void CloseBlock(State& state, ops::TimeUs end_us, std::vector<QualityBlock>& finished,
                  ops::Events& out) const;
  ops::Explanation Explain(int which, const State& state) const;
  SignalQualityOptions options_;
};

}  // namespace vigil::ecg
