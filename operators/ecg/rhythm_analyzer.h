// The rhythm stage of the ECG chain: everything that is decided from the beat series and the
// waveform together. It consumes the raw ECG (mV; NaN = sample flagged invalid) and the beats
// the QRS detector / classifier found (label, RR, heart rate), and emits ops::Episode events:
//   signal quality  NOISE, FLAT, SATURATION, LEADOFF        (ecg_signal_quality.h)
//   waveform        VF, VFL                                  (ventricular_fibrillation_detector.h)
//   beats           AFIB                                     (atrial_fibrillation_detector.h)
//                   VT                                       (ventricular_tachycardia_detector.h)
//                   BRADY, XBRADY, TACHY, XTACHY             (heart_rate_limits.h)
//   beats + time    PAUSE, ASYS                              (beat_absence_detector.h)
// Every threshold is a parameter (RhythmParameters lists the keys); defaults are the rules of
// shared/CLINICAL.md. The stage is robust to its own inputs' failures: beats in unusable signal
// count for nothing, a gap or an unusable stretch is never a pause or asystole, and VF is never
// called on lead off, flat line, saturation or noise.
//
// Ownership and threading: a RhythmAnalyzer is immutable and may be shared; its RhythmState
// belongs to one patient stream and is used by one thread at a time.
#pragma once

#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/signal.h"
#include "operators/core/stream_operator.h"
#include "operators/ecg/atrial_fibrillation_detector.h"
#include "operators/ecg/beat_absence_detector.h"
#include "operators/ecg/ecg_signal_quality.h"
#include "operators/ecg/heart_rate_limits.h"
#include "operators/ecg/ventricular_fibrillation_detector.h"
#include "operators/ecg/ventricular_tachycardia_detector.h"

namespace vigil::ecg {

struct RhythmOptions {
  SignalQualityOptions quality;
  VentricularFibrillationOptions vf;
  AtrialFibrillationOptions af;
  VentricularTachycardiaOptions vt;
  HeartRateLimitOptions hr;
  BeatAbsenceOptions absence;
};

// Every rhythm parameter of ecg.arrhythmia ("hr_low_bpm", "asystole_s", "af_threshold",
// "vf_min_s", "quality_noise_hf_rms_mv", ...), defaulting to CLINICAL.md's rules.
const ops::ParameterTable<RhythmOptions>& RhythmParameters();

// The options `parameters` set (rhythm keys only), with what follows from them (VF windows step
// with the quality blocks). Throws ops::OptionError naming "ecg.arrhythmia.<key>".
RhythmOptions RhythmOptionsFrom(const ops::Parameters& parameters);
// Sets the options that follow from others.
void DeriveRhythmOptions(RhythmOptions& options);

class RhythmState;

class RhythmAnalyzer {
 public:
  // Throws ops::OptionError naming the field and value when an option is out of range.
  static RhythmAnalyzer Make(const RhythmOptions& options);
  const RhythmOptions& options() const { return options_; }

  std::unique_ptr<RhythmState> MakeState() const;

  // Consumes the next raw ECG chunk and the beats found so far that were not given before
  // (time order; they may lag the chunk by the detector's delay, never lead it). The detector
  // promises that no further beat will be reported before `beats_final_until_us`: time-based
  // rules (pause, asystole) are decided only up to there. `atrial`, when not empty, holds each
  // beat's PR-interval segment (atrial_activity.h), in the order of `beats`.
  void Process(RhythmState& state, const ops::Chunk& ecg, std::span<const ops::Beat> beats,
               ops::TimeUs beats_final_until_us, ops::Events& out,
               std::span<const AtrialSegment> atrial = {}) const;
  // ECG samples in [from_us, to_us) are missing. Open episodes end at `from_us`; the gap is
  // never counted as time without QRS.
  void OnGap(RhythmState& state, ops::TimeUs from_us, ops::TimeUs to_us, ops::Events& out) const;
  // Lead off / lead on reported by the device.
  void OnLeadOff(RhythmState& state, bool off) const;
  // End of a recording: closes open episodes at the last sample.
  void Finish(RhythmState& state, ops::Events& out) const;
  // True when the signal was judged usable (no lead off, flat line, saturation or noise) in
  // every quality block over [from_us, to_us] that it still remembers (about 20 s), and
  // at least one such block was judged.
  bool Usable(const RhythmState& state, ops::TimeUs from_us, ops::TimeUs to_us) const;

 private:
  RhythmAnalyzer(const RhythmOptions& o);
  void ProcessBlock(RhythmState& s, const ops::Chunk& part, std::span<const ops::Beat> beats,
                    std::span<const AtrialSegment> atrial, size_t& next_beat,
                    ops::TimeUs beats_final_until_us, ops::Events& out) const;
  void OnBeat(RhythmState& s, const ops::Beat& beat, const AtrialSegment* atrial,
              ops::Events& out) const;
  // True when the beats around [from_us, to_us] form an organised rhythm (VF veto).
  bool OrganizedRhythm(const RhythmState& s, ops::TimeUs from_us, ops::TimeUs to_us) const;
  // Decides pause / asystole up to `now_us` after judging the VF steps that ended by then.
  void AdvanceAbsence(RhythmState& s, ops::TimeUs now_us, ops::Events& out) const;

  RhythmOptions options_;
  EcgSignalQuality quality_;
  VentricularFibrillationDetector vf_;
  AtrialFibrillationDetector af_;
  VentricularTachycardiaDetector vt_;
  HeartRateLimits hr_;
  BeatAbsenceDetector absence_;
};

class RhythmState final : public ops::OperatorState {
 public:
  std::string Snapshot() const override;
  void Restore(std::string_view bytes) override;

 private:
  friend class RhythmAnalyzer;
  void Save(ops::SnapshotWriter& w) const;
  void Load(ops::SnapshotReader& r);

  struct Step {
    ops::TimeUs start_us = 0;
    ops::TimeUs end_us = 0;
    float max_slope_mv_s = 0;
    float p2p_mv = 0;
  };
  std::deque<Step> steps_;                // VF steps not yet judged for QRS-like activity
  std::deque<ops::TimeUs> recent_beats_;  // last beats, to tell which steps held one
  std::deque<float> beat_step_slopes_;    // steepest slope of the last steps that held a beat
  double qrs_slope_mv_s_ = 0;             // their median: the patient's QRS slope; 0 = none yet
  bool started_ = false;
  bool after_gap_ = false;
  ops::TimeUs last_sample_us_ = 0;
  ops::TimeUs last_beat_us_ = -1;
  EcgSignalQuality::State quality_;
  VentricularFibrillationDetector::State vf_;
  AtrialFibrillationDetector::State af_;
  VentricularTachycardiaDetector::State vt_;
  HeartRateLimits::State hr_;
  BeatAbsenceDetector::State absence_;
};

}  // namespace vigil::ecg
