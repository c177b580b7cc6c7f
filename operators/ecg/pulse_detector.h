// Pulse detection in a pulsatile waveform - a pulse oximeter's photoplethysmogram (PLETH, any
// scale) or an arterial pressure line (ABP, mmHg) - and a per-window pulse quality verdict, for
// verifying the ECG's life-threatening alarms (an asystole, VT or VF with a regular perfusing
// pulse beside it is an ECG artefact; no pulse supports the alarm).
//
// Detection: the slope sum function of Zong et al., "An open-source algorithm to detect onset of
// arterial blood pressure pulses", Computers in Cardiology 30:259-262, 2003 (the detector of
// the PhysioNet `wabp` program, also used on PLETH by most PhysioNet/CinC 2015 entries): the
// waveform is low-passed (2nd-order Butterworth, `lowpass_hz`), the positive first differences
// are summed over `ssf_window_s` (the upstroke of each pulse makes one SSF hump), and a pulse is
// the SSF crossing `threshold_fraction` of its recent pulse peaks, at least `refractory_s`
// after the previous one. The level decays while no pulse is found (so the detector re-learns
// after an amplitude change) but never below `floor_fraction` of its long-term value. The first
// sample is subtracted from the waveform, so a DC level (a raw pleth's AC is a few per cent of
// it) does not enter the first level. Noise still makes humps: the quality verdict below, not
// the detector, tells them from pulses. Pulse times are the crossing sample's device time, less
// the filter's group delay.
//
// Quality (PulseDetector::Judge): over a window, the pulses are "regular and plausible" - at
// least `min_pulses`, every interval within [60/max_rate, 60/min_rate] s, at least 75 % of them
// within `regularity` of their median, and no pulse's SSF peak below a third of their median -
// after the physiological feasibility rules of Sun, Reisner & Mark, "A signal abnormality index
// for arterial blood pressure waveforms", Computers in Cardiology 33:13-16, 2006 (this project's
// reduction of them to pulse intervals and amplitudes) - and alike in shape: the median
// correlation of consecutive pulses' upstrokes at least `min_shape_correlation`, after the
// template-matching quality index of Li & Clifford, "Dynamic time warping and machine learning
// for signal quality assessment of pulsatile signals", Physiol Meas 33:1491-1501, 2012 (plain
// correlation of the upstrokes here). Noise makes humps at random intervals and of random
// shape: the shape test is what keeps it from passing for a pulse.
//
// Value types; one PulseDetector::State per stream, used by one thread at a time.
#pragma once

#include <array>
#include <deque>
#include <string>
#include <vector>

#include "operators/core/parameters.h"
#include "operators/core/signal.h"
#include "operators/core/snapshot.h"
#include "operators/filters/biquad_cascade.h"

namespace vigil::ecg {

struct PulseOptions {
  double lowpass_hz = 10;
  double ssf_window_s = 0.128;
  double threshold_fraction = 0.5;
  double floor_fraction = 0.2;
  double refractory_s = 0.3;
  double min_rate_bpm = 25;
  double max_rate_bpm = 200;
  double regularity = 0.25;
  int min_pulses = 3;
  double min_shape_correlation = 0.7;
};

// Keys "pulse_*" of ecg.arrhythmia.
const ops::ParameterTable<PulseOptions>& PulseParameters();

inline constexpr int kPulseShapePoints = 16;

struct Pulse {
  ops::TimeUs time_us = 0;
  float ssf_peak = 0;
  // The upstroke: the last 0.4 s of the low-passed waveform when the slope-sum hump ended,
  // at kPulseShapePoints points, mean removed and scaled to unit norm.
  std::array<float, kPulseShapePoints> shape{};
};

// A window's verdict.
struct PulseVerdict {
  bool good = false;             // regular, plausible pulses
  int pulses = 0;                // pulses in the window
  double rate_bpm = 0;           // from the median interval; 0 with fewer than two pulses
  double amplitude = 0;          // median slope-sum peak of the pulses (the waveform's units / s)
  double shape_correlation = 0;  // median correlation of consecutive pulses' upstrokes
  std::string why;               // the first rule a bad window failed ("" when good)
};

class PulseDetector {
 public:
  // Throws ops::OptionError naming the field (prefix "pulse_") and value.
  static PulseDetector Make(const PulseOptions& options);
  const PulseOptions& options() const { return options_; }

  struct State {
    double sample_rate_hz = 0;  // 0 until the first chunk
    float origin = 0;           // the first sample: subtracted, so a DC level is no upstroke
    filters::BiquadCascade lowpass;
    std::vector<float> recent;  // ring of the last 0.4 s of the low-passed waveform
    std::deque<float> diffs;    // positive differences in the SSF window
    double ssf = 0;
    float previous = 0;
    int64_t samples = 0;    // samples since the stream (re)started
    double level = 0;       // recent SSF pulse peak; 0 while learning
    double long_level = 0;  // slow average of the pulse peaks: the floor's reference
    double learn_max = 0;   // SSF maximum while learning
    int64_t last_pulse_sample = -1;
    bool in_pulse = false;  // SSF above threshold: tracking this pulse's peak
    double pulse_peak = 0;
    ops::TimeUs pulse_time_us = 0;
    ops::TimeUs last_time_us = 0;  // end of the last chunk
    std::deque<Pulse> pulses;      // the last `kKeepS` seconds of pulses
    void Save(ops::SnapshotWriter& w) const;
  };

  static constexpr double kKeepS = 30;
  static constexpr size_t kMaxPulses = 120;  // 30 s at 240 bpm; bounds the state

  // Reads what State::Save wrote (the filter is designed from this detector's options).
  // Throws ops::SnapshotError on malformed bytes.
  void Load(State& state, ops::SnapshotReader& r) const;

  void Process(State& state, const ops::Chunk& chunk) const;
  // Samples are missing: detection restarts, the pulses seen so far are forgotten.
  void Restart(State& state) const;
  // Pulses in [from_us, to_us] judged as described above.
  PulseVerdict Judge(const State& state, ops::TimeUs from_us, ops::TimeUs to_us) const;

 private:
  explicit PulseDetector(const PulseOptions& o) : options_(o) {}
  void Start(State& state, double sample_rate_hz) const;
  PulseOptions options_;
};

}  // namespace vigil::ecg
