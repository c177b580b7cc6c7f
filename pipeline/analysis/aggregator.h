// Per-patient aggregates for dashboards, in device time: minute windows (heart rate, AF burden,
// respiratory rate, tidal and minute volume, CO2, leak) and, when the adherence operator closes
// a therapy day, the therapy-day and rolling 30-day windows. The therapy-day window also carries,
// by name, every nightly measurement an operator's spec declares (Aggregate.measures): with the
// adherence operator's window of that day when it goes out (operators close nights on the same
// watermark), else in a therapy-day window of their own once device time is `kNightGraceUs`
// past the day's end (a patient with an oximeter or a CO2 monitor and no ventilator). A nightly
// value for a day already published is dropped. Bounded state: minute
// windows keep at most a minute of values; day statistics use fixed-bin histograms.
//
// Not thread-safe: one instance per patient.
#pragma once

#include <array>
#include <deque>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "operators/core/event.h"
#include "vigil/v1/aggregate.pb.h"

namespace vigil::analysis {

// Quantiles of a bounded-range quantity with fixed bins (exact to half a bin).
class BinnedQuantiles {
 public:
  BinnedQuantiles(double lo, double hi, int bins);
  // `weight` counts: e.g. a breath weighted by its duration in 0.1 s (see aggregator.cpp).
  void Add(double value, uint32_t weight = 1);
  uint64_t count() const { return count_; }
  // q in [0, 1]; NaN when empty.
  double Quantile(double q) const;
  void Clear();
  const std::vector<uint32_t>& bins() const { return bins_; }
  void SetBins(std::vector<uint32_t> bins);

 private:
  double lo_, hi_, width_;
  std::vector<uint32_t> bins_;
  uint64_t count_ = 0;
};

class Aggregator {
 public:
  Aggregator(std::string patient_id, std::string time_zone, bool minute_windows);

  void SetTimeZone(std::string time_zone) { time_zone_ = std::move(time_zone); }

  // Feeds one operator event.
  void OnEvent(const ops::Event& event);
  // Marks [from, to) as covered by an ECG signal (for ecg_coverage).
  void OnEcgCoverage(ops::TimeUs from_us, ops::TimeUs to_us);
  // Closes every minute window that ends at or before `watermark_us`.
  void AdvanceTo(ops::TimeUs watermark_us, std::vector<v1::Aggregate>& out);
  // End of a recording: closes the open minute.
  void Finish(std::vector<v1::Aggregate>& out);

  // Events that arrived after their minute was published (dropped from minute windows).
  uint64_t late_events() const { return late_events_; }

  // How long after a minute ends it stays open for delayed operator events (QRS detection,
  // breath segmentation, episode confirmation report events seconds after they happen).
  static constexpr ops::TimeUs kAllowedLatenessUs = 30 * ops::kMicrosPerSecond;
  // How long after a therapy day's end its nightly measurements wait for the adherence operator's
  // window of that day before they go out alone.
  static constexpr ops::TimeUs kNightGraceUs = 3600 * ops::kMicrosPerSecond;

  std::string Snapshot() const;
  void Restore(std::string_view bytes);  // throws ops::SnapshotError

 private:
  struct Minute {
    ops::TimeUs start_us = 0;
    std::vector<float> hr, rr, vt, mv, peak, leak, co2, pressure;
    uint32_t beats = 0, v_beats = 0, apneas = 0, hypopneas = 0;
    double af_us = 0, ecg_us = 0;
    bool any = false;
  };
  struct Day {
    BinnedQuantiles leak{0, 200, 1000};
    BinnedQuantiles rr{0, 80, 800};
    BinnedQuantiles vt{0, 3000, 1500};
    BinnedQuantiles mv{0, 60, 600};
    BinnedQuantiles pressure{0, 40, 400};
    uint32_t apneas = 0, hypopneas = 0, breaths = 0;
  };

  // nullptr when the minute of `t` is already closed.
  Minute* MinuteFor(ops::TimeUs t);
  // The therapy date of `t` (cached: consecutive events fall in one day).
  const std::string& DateOf(ops::TimeUs t);
  Day& DayFor(ops::TimeUs t);
  void EmitMinute(const Minute& m, std::vector<v1::Aggregate>& out) const;
  void EmitDay(const ops::TherapyDay& day);

  std::string patient_id_;
  std::string time_zone_;
  bool minute_windows_;
  std::map<ops::TimeUs, Minute> minutes_;  // open minutes by start
  // Minutes that start before this are closed: events for them arrive too late and are only
  // counted (operators emit with a delay; kAllowedLatenessUs covers their normal delay).
  ops::TimeUs closed_until_us_ = std::numeric_limits<ops::TimeUs>::min();
  uint64_t late_events_ = 0;
  std::map<std::string, Day> days_;  // by therapy date
  ops::TimeUs day_cache_start_ = 0, day_cache_end_ = 0;
  std::string day_cache_date_;
  std::deque<std::pair<std::string, double>> usage_history_;  // last 30 days' usage (min)
  std::vector<v1::Aggregate> pending_;  // day aggregates waiting for AdvanceTo
  // Nightly measurements (OperatorSpec: nightly) of one therapy day, until its aggregate goes out.
  struct Night {
    ops::TimeUs start_us = 0, end_us = 0;
    std::map<std::string, double> measures;
  };
  std::map<std::string, Night> night_measures_;  // by therapy date
  // Dates whose therapy-day window went out (the last kMaxHeldNights; not in snapshots: a
  // restore can at worst publish a late nightly value in a window of its own).
  std::deque<std::string> published_nights_;
  void MarkPublished(const std::string& date);
  static constexpr size_t kMaxHeldNights = 64;
  std::vector<std::pair<ops::TimeUs, ops::TimeUs>> af_open_;  // open AF episode starts
};

// The therapy day (noon to noon, local time in `time_zone`) containing `t`: its local date
// "YYYY-MM-DD" and its [start, end) in UTC microseconds. Throws std::runtime_error for an
// unknown zone.
struct TherapyDayBounds {
  std::string date;
  ops::TimeUs start_us = 0;
  ops::TimeUs end_us = 0;
};
TherapyDayBounds TherapyDayOf(ops::TimeUs t, const std::string& time_zone);

}  // namespace vigil::analysis
