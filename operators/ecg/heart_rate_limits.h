// Bradycardia and tachycardia alarms with their extreme forms (monitor defaults; per patient):
//   BRADY   heart rate < low_bpm (40)              for >= min_s (10 s) or low_beats (5) beats
//   TACHY   heart rate > high_bpm (140)            for >= min_s or high_beats (17) beats
//   XBRADY  heart rate < max(low - 10, 30)         for >= extreme_min_s (10 s) or low_beats
//   XTACHY  heart rate > min(high + 20, 180)       for >= extreme_min_s or high_beats
// (Philips rule for the extreme limits: offsets and floor / cap are parameters.)
// Two tests, either of which confirms a condition:
//   - sustained: the beat's monitor-rule rate (last 12 RR, or 4 when RR > 1.2 s three times in
//     a row; applied here when a beat carries none) beyond the limit at every beat for the
//     duration (start: the first such beat);
//   - consecutive beats, the bedside-monitor alarm definitions of the PhysioNet/CinC Challenge
//     2015 (Clifford et al., Physiol Meas 37:E5, 2016): the rate over the last N consecutive
//     usable beats beyond the limit (start: the first of them). The rate is 60 over the mean of
//     their N - 1 RR without the longest and the shortest (N >= 5): the mean over the run rather
//     than every single RR keeps the rule true in atrial fibrillation, whose RR scatter around a
//     sustained rate just past the limit, and the trimming keeps one missed or extra QRS from
//     hiding or faking it.
// A condition ends at the first beat that meets neither test. Beats in unusable signal neither
// confirm nor end a condition but break a run of consecutive beats; a gap ends it.
#pragma once

#include <deque>

#include "operators/core/event.h"
#include "operators/core/parameters.h"
#include "operators/core/snapshot.h"
#include "operators/ecg/episode_tracker.h"

namespace vigil::ecg {

struct HeartRateLimitOptions {
  double low_bpm = 40;
  double high_bpm = 140;
  double min_s = 10;
  double extreme_low_offset_bpm = 10;
  double extreme_low_floor_bpm = 30;
  double extreme_high_offset_bpm = 20;
  double extreme_high_cap_bpm = 180;
  double extreme_min_s = 10;
  int low_beats = 5;    // consecutive beats of the brady test; 0 disables it
  int high_beats = 17;  // consecutive beats of the tachy test; 0 disables it
};

// Keys "hr_*" of ecg.arrhythmia.
const ops::ParameterTable<HeartRateLimitOptions>& HeartRateLimitParameters();

class HeartRateLimits {
 public:
  // Throws ops::OptionError naming the field (prefix "hr_") and value.
  static HeartRateLimits Make(const HeartRateLimitOptions& options);
  double extreme_low_bpm() const { return extreme_low_; }
  double extreme_high_bpm() const { return extreme_high_; }

  struct State {
    std::deque<float> rr;        // last 12 RR (s) for the fallback heart rate
    EpisodeTracker trackers[4];  // brady, xbrady, tachy, xtachy
    ops::TimeUs last_beat_us = 0;
    double last_hr = 0;
    // The last consecutive usable beats (time, RR; at most max(low_beats, high_beats)).
    std::deque<ops::TimeUs> run_times;
    std::deque<float> run_rr;
    double last_window_hr[2] = {0, 0};  // rate over the low / high beat window, 0 = not full
    void Save(ops::SnapshotWriter& w) const;
    // `with_run`: false for the format before the run of consecutive beats (rhythm version 4).
    void Load(ops::SnapshotReader& r, bool with_run = true);
  };

  void OnBeat(State& state, const ops::Beat& beat, bool usable, ops::Events& out) const;
  void Stop(State& state, ops::Events& out) const;

  // The monitor rule over the RR history (newest last): mean of the last 12, or of the last 4
  // when the last three exceed 1.2 s. 0 with fewer than 4 intervals.
  static double MonitorRate(const std::deque<float>& rr);

 private:
  HeartRateLimits(const HeartRateLimitOptions& o, double xlow, double xhigh)
      : options_(o), extreme_low_(xlow), extreme_high_(xhigh) {}
  ops::Explanation Explain(int which, const State& s) const;
  // Rate over the last `beats` consecutive beats of the run and the time of the first; 0 when
  // the run is shorter or the test is off.
  static double WindowRate(const State& s, int beats, ops::TimeUs& first_us);
  HeartRateLimitOptions options_;
  double extreme_low_;
  double extreme_high_;
};

}  // namespace vigil::ecg
