// Bradycardia and tachycardia alarms with their extreme forms (monitor defaults; per patient):
//   BRADY   heart rate < low_bpm (40)              for >= min_s (10 s)
//   TACHY   heart rate > high_bpm (140)            for >= min_s
//   XBRADY  heart rate < max(low - 10, 30)         for >= extreme_min_s (10 s)
//   XTACHY  heart rate > min(high + 20, 180)       for >= extreme_min_s
// (Philips rule for the extreme limits: offsets and floor / cap are parameters.)
// The heart rate is the beat's monitor-rule value (ecg-qrs: last 12 RR, or 4 when RR > 1.2 s
// three times in a row); when a beat carries none, the same rule is applied here. A condition
// starts at the first beat that meets it and is confirmed when beats keep meeting it for the
// duration (start: that first beat); it ends at the first beat that no longer meets it.
// Beats in unusable signal neither confirm nor end a condition; a gap ends it.
#pragma once

#include <deque>

#include "operators/core/event.h"
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
};

class HeartRateLimits {
 public:
  // Throws ops::OptionError naming the field (prefix "hr_") and value.
  static HeartRateLimits Make(const HeartRateLimitOptions& options);
  double extreme_low_bpm() const { return extreme_low_; }
  double extreme_high_bpm() const { return extreme_high_; }

  struct State {
    std::deque<float> rr;            // last 12 RR (s) for the fallback heart rate
    EpisodeTracker trackers[4];      // brady, xbrady, tachy, xtachy
    ops::TimeUs last_beat_us = 0;
    double last_hr = 0;
    void Save(ops::SnapshotWriter& w) const;
    void Load(ops::SnapshotReader& r);
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
  HeartRateLimitOptions options_;
  double extreme_low_;
  double extreme_high_;
};

}  // namespace vigil::ecg
