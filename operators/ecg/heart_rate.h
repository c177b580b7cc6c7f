// Heart rate by the bedside-monitor rule (CLINICAL.md): 60 / mean of the last 12 RR
// intervals, or of the last 4 when the last three RR are all longer than 1.2 s (so a sudden
// bradycardia shows within a few beats instead of being averaged away).
// Value type; one per stream; trivially snapshot-able (Save/Load).
#pragma once

#include <array>
#include <cstdint>

#include "operators/core/snapshot.h"

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

}  // namespace vigil::ecg
