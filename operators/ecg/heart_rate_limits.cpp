#include "operators/ecg/heart_rate_limits.h"

#include <algorithm>

#include "operators/core/options.h"

namespace vigil::ecg {

namespace {
constexpr ops::EpisodeKind kKinds[4] = {
    ops::EpisodeKind::kBradycardia, ops::EpisodeKind::kExtremeBradycardia,
    ops::EpisodeKind::kTachycardia, ops::EpisodeKind::kExtremeTachycardia};
}

HeartRateLimits HeartRateLimits::Make(const HeartRateLimitOptions& o) {
  ops::RequireRange("hr_low_bpm", o.low_bpm, 15, 150);
  ops::RequireRange("hr_high_bpm", o.high_bpm, o.low_bpm + 1, 300);
  ops::RequireRange("hr_min_s", o.min_s, 0, 600);
  ops::RequireRange("hr_extreme_low_offset_bpm", o.extreme_low_offset_bpm, 0, 100);
  ops::RequireRange("hr_extreme_low_floor_bpm", o.extreme_low_floor_bpm, 10, o.low_bpm);
  ops::RequireRange("hr_extreme_high_offset_bpm", o.extreme_high_offset_bpm, 0, 100);
  ops::RequireRange("hr_extreme_high_cap_bpm", o.extreme_high_cap_bpm, o.high_bpm, 350);
  ops::RequireRange("hr_extreme_min_s", o.extreme_min_s, 0, 600);
  const double xlow = std::max(o.low_bpm - o.extreme_low_offset_bpm, o.extreme_low_floor_bpm);
  const double xhigh = std::min(o.high_bpm + o.extreme_high_offset_bpm, o.extreme_high_cap_bpm);
  return HeartRateLimits(o, xlow, xhigh);
}

double HeartRateLimits::MonitorRate(const std::deque<float>& rr) {
  if (rr.size() < 4) return 0;
  const size_t n = rr.size();
  const bool slow = rr[n - 1] > 1.2f && rr[n - 2] > 1.2f && rr[n - 3] > 1.2f;
  const size_t use = slow ? 4 : std::min<size_t>(12, n);
  double sum = 0;
  for (size_t i = n - use; i < n; ++i) sum += rr[i];
  return sum > 0 ? 60.0 * static_cast<double>(use) / sum : 0;
}

ops::Explanation HeartRateLimits::Explain(int which, const State& s) const {
  ops::Explanation why;
  why.algorithm = "ecg.heart_rate_limits";
  why.version = "1.0.0";
  why.measures = {{"heart_rate", s.last_hr, "bpm"}};
  const double limits[4] = {options_.low_bpm, extreme_low_, options_.high_bpm, extreme_high_};
  const bool low = which < 2;
  const bool extreme = which % 2 == 1;
  why.limits = {{extreme ? (low ? "extreme_low" : "extreme_high") : (low ? "hr_low" : "hr_high"),
                 limits[which], "bpm", low ? "<" : ">"},
                {"min_duration", extreme ? options_.extreme_min_s : options_.min_s, "s", ">="}};
  why.rule = extreme ? (low ? "heart rate below low limit - 10 (floor 30) for >= 10 s"
                            : "heart rate above high limit + 20 (cap 180) for >= 10 s")
                     : (low ? "heart rate below the low limit for >= 10 s"
                            : "heart rate above the high limit for >= 10 s");
  return why;
}

void HeartRateLimits::Stop(State& s, ops::Events& out) const {
  for (int k = 0; k < 4; ++k) {
    auto& t = s.trackers[k];
    const auto start = t.run_start_us, last = t.last_seen_us;
    if (t.Stop() == EpisodeTracker::Change::kClosed) {
      out.push_back(MakeEpisode(kKinds[k], ops::Episode::Phase::kClosed, start, last,
                                Explain(k, s)));
    }
  }
  s.rr.clear();
}

void HeartRateLimits::OnBeat(State& s, const ops::Beat& beat, bool usable,
                             ops::Events& out) const {
  if (beat.rr_s > 0) {
    s.rr.push_back(beat.rr_s);
    while (s.rr.size() > 12) s.rr.pop_front();
  }
  s.last_beat_us = beat.time_us;
  if (!usable) return;
  const double hr = beat.heart_rate_bpm > 0 ? beat.heart_rate_bpm : MonitorRate(s.rr);
  if (hr <= 0) return;
  s.last_hr = hr;
  const bool met[4] = {hr < options_.low_bpm, hr < extreme_low_, hr > options_.high_bpm,
                       hr > extreme_high_};
  for (int k = 0; k < 4; ++k) {
    auto& t = s.trackers[k];
    const auto min_us = ops::FromSeconds(k % 2 ? options_.extreme_min_s : options_.min_s);
    if (met[k]) {
      if (t.Present(beat.time_us, beat.time_us, min_us) == EpisodeTracker::Change::kOpened) {
        out.push_back(MakeEpisode(kKinds[k], ops::Episode::Phase::kOpened, t.run_start_us, 0,
                                  Explain(k, s)));
      }
    } else {
      const auto start = t.run_start_us;
      if (t.Stop() == EpisodeTracker::Change::kClosed) {
        out.push_back(MakeEpisode(kKinds[k], ops::Episode::Phase::kClosed, start, beat.time_us,
                                  Explain(k, s)));
      }
    }
  }
}

void HeartRateLimits::State::Save(ops::SnapshotWriter& w) const {
  std::vector<float> v(rr.begin(), rr.end());
  w.PutSpan<float>(v);
  for (const auto& t : trackers) t.Save(w);
  w.Put<int64_t>(last_beat_us);
  w.Put<double>(last_hr);
}

void HeartRateLimits::State::Load(ops::SnapshotReader& r) {
  const auto v = r.GetVector<float>(12);
  rr.assign(v.begin(), v.end());
  for (auto& t : trackers) t.Load(r);
  last_beat_us = r.Get<int64_t>();
  last_hr = r.Get<double>();
}

}  // namespace vigil::ecg
