#include "simulator/co2_generator.h"

#include <algorithm>
#include <cmath>

namespace vigil::sim {

double Co2NightPlan::RuleThreshold() const {
  return std::min(55.0, std::max(50.0, awake_mm_hg + 10.0));
}

double Co2NightPlan::Level(double s) const {
  double level = awake_mm_hg;
  const double x = std::clamp((s - sleep_onset_s) / 1200.0, 0.0, 1.0);
  level += sleep_rise_mm_hg * x * x * (3 - 2 * x);  // smoothstep
  if (peak_mm_hg > 0) {
    const double base = awake_mm_hg + sleep_rise_mm_hg;
    const double u = s - episode_start_s;
    double w = 0;
    if (u > 0 && u < ramp_s) w = u / ramp_s;
    else if (u >= ramp_s && u <= ramp_s + plateau_s) w = 1;
    else if (u > ramp_s + plateau_s && u < 2 * ramp_s + plateau_s) w = (2 * ramp_s + plateau_s - u) / ramp_s;
    level += w * (peak_mm_hg - base);
  }
  return level;
}

Co2NightPlan PlanCo2Night(const PatientProfile& profile, double duration_s, Rng& rng,
                          ops::TimeUs session_start_us, std::vector<TruthEvent>& truth) {
  Co2NightPlan plan;
  plan.night = profile.co2_night;
  plan.awake_mm_hg = profile.co2_awake_mm_hg;
  plan.sleep_onset_s = rng.Uniform(600, 1500);
  plan.sleep_rise_mm_hg = rng.Uniform(2, 5);
  const double base = plan.awake_mm_hg + plan.sleep_rise_mm_hg;
  const double threshold = plan.RuleThreshold();
  bool near_miss_short = false;
  switch (plan.night) {
    case Co2Night::kNormal:
      return plan;
    case Co2Night::kHypoventilation:
      plan.peak_mm_hg = threshold + rng.Uniform(2.5, 8);
      plan.ramp_s = rng.Uniform(600, 1200);
      plan.plateau_s = rng.Uniform(720, 2400);
      break;
    case Co2Night::kNearMiss:
      near_miss_short = rng.Chance(0.5);
      if (near_miss_short) {
        // Above the threshold, but for 6.5-8 min only.
        plan.peak_mm_hg = threshold + rng.Uniform(2.5, 4);
        plan.ramp_s = 180;
        const double f = (threshold - base) / (plan.peak_mm_hg - base);
        plan.plateau_s = std::max(0.0, rng.Uniform(390, 480) - 2 * (1 - f) * plan.ramp_s);
      } else {
        plan.peak_mm_hg = threshold - rng.Uniform(1.2, 2.0);
        plan.ramp_s = rng.Uniform(600, 1200);
        plan.plateau_s = rng.Uniform(1200, 2400);
      }
      break;
  }
  const double length = 2 * plan.ramp_s + plan.plateau_s;
  const double earliest = plan.sleep_onset_s + 1500;  // after the sleep rise has settled
  if (duration_s - 300 < earliest + length) {
    plan.peak_mm_hg = 0;  // the night is too short for the episode
    return plan;
  }
  plan.episode_start_s = rng.Uniform(earliest, duration_s - 300 - length);
  TruthEvent event;
  const double f = std::max(0.0, (threshold - base) / (plan.peak_mm_hg - base));
  double above_s = 0;
  if (plan.peak_mm_hg > threshold) {
    const double from = plan.episode_start_s + f * plan.ramp_s;
    const double to = plan.episode_start_s + plan.ramp_s + plan.plateau_s + (1 - f) * plan.ramp_s;
    above_s = to - from;
    event.start_us = session_start_us + ops::FromSeconds(from);
    event.end_us = session_start_us + ops::FromSeconds(to);
  } else {
    event.start_us = session_start_us + ops::FromSeconds(plan.episode_start_s);
    event.end_us = session_start_us + ops::FromSeconds(plan.episode_start_s + length);
  }
  event.kind = plan.night == Co2Night::kHypoventilation ? TruthKind::kHypoventilation
                                                        : TruthKind::kHypoventilationNearMiss;
  event.params = {{"awake_mm_hg", plan.awake_mm_hg},
                  {"peak_mm_hg", plan.peak_mm_hg},
                  {"threshold_mm_hg", threshold},
                  {"minutes_above_threshold", above_s / 60}};
  truth.push_back(std::move(event));
  return plan;
}

void Co2Generator::Generate(int32_t* out, int n) {
  // AR(1) at 1 Hz with a 60 s correlation time and a stationary SD of 0.3 mmHg.
  constexpr double kPhi = 0.98347;  // exp(-1/60)
  const double innovation = 0.3 * std::sqrt(1 - kPhi * kPhi);
  for (int i = 0; i < n; ++i, ++next_sample_) {
    wander_ = kPhi * wander_ + innovation * rng_.Normal();
    const double v = plan_.Level(static_cast<double>(next_sample_)) + wander_;
    out[i] = static_cast<int32_t>(std::lround(v / kGainMmHg));
  }
}

}  // namespace vigil::sim
