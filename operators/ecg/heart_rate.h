// Heart rate by the bedside-monitor rule (CLINICAL.md): 60 / mean of the last 12 RR
// intervals, or of the last 4 when the last three RR are all longer than 1.2 s (so a sudden
// bradycardia shows within a few beats instead of being averaged away).
// Value type; one per stream; trivially snapshot-able (Save/Load).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <vector>

#include "operators/core/snapshot.h"
#include "operators/core/time.h"

namespace vigil::ecg {

class HeartRateTracker {
 public:
  static constexpr int kLong = 12;
  static constexpr int kShort = 4;
  static constexpr double kSlowRrS = 1.2;

  // Adds an RR interval (s) and returns the heart rate (bpm) by the rule.
  float Add(double rr_s) {
    rr_[static_cast<size_t>(count_ % kLong)] = rr_s;
    ++count_;
    return Current();
  }
  // Current rate by the rule; 0 before the first interval.
  float Current() const {
    const int64_t available = count_ < kLong ? count_ : kLong;
    if (available == 0) return 0;
    bool slow = available >= 3;
    for (int64_t i = 1; i <= 3 && slow; ++i) slow = At(i) > kSlowRrS;
    const int64_t use = slow ? (available < kShort ? available : kShort) : available;
    double sum = 0;
    for (int64_t i = 1; i <= use; ++i) sum += At(i);
    return static_cast<float>(60.0 * static_cast<double>(use) / sum);
  }
  void Reset() { count_ = 0; }

  void Save(ops::SnapshotWriter& w) const {
    for (const double v : rr_) w.Put<double>(v);
    w.Put<int64_t>(count_);
  }
  void Load(ops::SnapshotReader& r) {
    for (double& v : rr_) v = r.Get<double>();
    count_ = r.Get<int64_t>();
    if (count_ < 0) throw ops::SnapshotError("heart rate: negative count");
  }

 private:
  // i-th most recent interval, i >= 1.
  double At(int64_t i) const { return rr_[static_cast<size_t>((count_ - i) % kLong)]; }
  std::array<double, kLong> rr_{};
  int64_t count_ = 0;
};

// How regular the beats (or pulses) at `times` within [from_us, to_us] are: their count, the
// median interval between successive ones (the upper median) and how many intervals lie
// within `tolerance` of it. Used to tell an organised rhythm beside a VF call and to verify one
// lead's alarm with another lead's beats.
struct IntervalRegularity {
  int beats = 0;
  int intervals = 0;
  double median_s = 0;  // 0 without intervals
  int within = 0;       // intervals within tolerance x median of it
};

inline IntervalRegularity RegularityOf(const std::deque<ops::TimeUs>& times, ops::TimeUs from_us,
                                       ops::TimeUs to_us, double tolerance) {
  IntervalRegularity r;
  std::vector<double> intervals;
  ops::TimeUs previous = -1;
  for (const auto t : times) {
    if (t < from_us || t > to_us) continue;
    ++r.beats;
    if (previous >= 0) intervals.push_back(ops::ToSeconds(t - previous));
    previous = t;
  }
  r.intervals = static_cast<int>(intervals.size());
  if (intervals.empty()) return r;
  std::vector<double> sorted = intervals;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(sorted.size() / 2),
                   sorted.end());
  r.median_s = sorted[sorted.size() / 2];
  for (const double v : intervals) r.within += std::fabs(v - r.median_s) <= tolerance * r.median_s;
  return r;
}

}  // namespace vigil::ecg
