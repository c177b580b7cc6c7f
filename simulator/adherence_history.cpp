#include "simulator/adherence_history.h"

#include <date/tz.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace vigil::sim {
namespace {

using Micros = std::chrono::microseconds;

const date::time_zone* Zone() {
  static const date::time_zone* zone = date::locate_zone(kTherapyTimeZone);
  return zone;
}

date::local_days LocalDay(ops::TimeUs t) {
  const auto local = Zone()->to_local(date::sys_time<Micros>{Micros{t}});
  return date::floor<date::days>(local);
}

ops::TimeUs ToUtc(date::local_time<Micros> local) {
  return Zone()->to_sys(local, date::choose::earliest).time_since_epoch().count();
}

}  // namespace

ops::TimeUs LocalBedtime(ops::TimeUs reference_us, int days_after, double minutes_after_22) {
  const auto day = LocalDay(reference_us) + date::days{days_after};
  const auto local = date::local_time<Micros>{day} + std::chrono::hours{22} +
                     Micros{static_cast<int64_t>(std::llround(minutes_after_22 * 60)) * 1'000'000};
  return ToUtc(local);
}

ops::TimeUs TherapyDayStart(ops::TimeUs t) {
  const auto local = Zone()->to_local(date::sys_time<Micros>{Micros{t}});
  auto day = date::floor<date::days>(local - std::chrono::hours{12});
  return ToUtc(date::local_time<Micros>{day} + std::chrono::hours{12});
}

double DrawNightUsage(const PatientProfile& profile, Rng& rng) {
  double mean = profile.usual_usage_h;
  if (profile.adherence == AdherencePattern::kDeclining) mean = rng.Uniform(0.5, 2.5);
  if (rng.Chance(profile.adherence == AdherencePattern::kCompliant ? 0.02 : 0.15)) return 0;
  return std::clamp(rng.Normal(mean, 0.8), 0.3, 10.5);
}

AdherenceHistory BuildAdherenceHistory(const PatientProfile& profile, ops::TimeUs stream_start_us,
                                       Rng& rng, std::vector<TruthEvent>& truth) {
  AdherenceHistory h;
  const ops::TimeUs today = TherapyDayStart(stream_start_us);
  const double decline_to = rng.Uniform(0.5, 2.5);
  for (int k = 30; k >= 1; --k) {
    const int night = 30 - k;  // 0 = oldest
    double usage;
    const bool skipped =
        rng.Chance(profile.adherence == AdherencePattern::kCompliant ? 0.02 : 0.08);
    if (profile.adherence == AdherencePattern::kDeclining && night >= 23) {
      // Linear fall over the last 7 nights towards `decline_to`, with skipped nights.
      const double x = (night - 22) / 7.0;
      usage = (1 - x) * profile.usual_usage_h + x * decline_to + 0.5 * rng.Normal();
      if (rng.Chance(0.2)) usage = 0;
    } else {
      usage = rng.Normal(profile.usual_usage_h, 0.8);
    }
    usage = skipped ? 0 : std::clamp(usage, 0.0, 10.5);
    // The evening that starts therapy day `today - k days`.
    const ops::TimeUs bedtime = LocalBedtime(today, -k, rng.Uniform(0, 90));
    double counted = 0;
    if (usage >= 5.0 / 60) {
      const ops::TimeUs total = ops::FromSeconds(std::round(usage * 3600));
      if (usage > 3 && rng.Chance(0.15)) {
        // A mask-off break in the night (toilet, discomfort): two sessions.
        const ops::TimeUs first = total * static_cast<int64_t>(rng.Int(30, 70)) / 100;
        const ops::TimeUs gap = ops::FromSeconds(rng.Uniform(600, 2400));
        h.sessions.push_back({bedtime, bedtime + first});
        h.sessions.push_back({bedtime + first + gap, bedtime + total + gap});
      } else {
        h.sessions.push_back({bedtime, bedtime + total});
      }
      counted = ops::ToSeconds(total) / 3600;
    }
    h.usage_h.push_back(counted);
  }
  h.mean30_h = std::accumulate(h.usage_h.begin(), h.usage_h.end(), 0.0) / 30;
  h.mean7_h = std::accumulate(h.usage_h.end() - 7, h.usage_h.end(), 0.0) / 7;
  const ops::TimeUs first_day = TherapyDayStart(LocalBedtime(today, -30, 0));
  if (h.mean7_h < 4.0 || h.mean7_h <= h.mean30_h - 1.5) {
    truth.push_back({TruthKind::kAdherenceDecline,
                     TherapyDayStart(LocalBedtime(today, -7, 0)),
                     today,
                     {{"mean7_h", h.mean7_h}, {"mean30_h", h.mean30_h}}});
  }
  const auto compliant_nights =
      std::count_if(h.usage_h.begin(), h.usage_h.end(), [](double u) { return u >= 4.0; });
  if (compliant_nights < 21) {  // 70 % of 30
    truth.push_back(
        {TruthKind::kNonCompliance,
         first_day,
         today,
         {{"nights_ge_4h", static_cast<double>(compliant_nights)}, {"mean30_h", h.mean30_h}}});
  }
  h.tonight_usage_h = DrawNightUsage(profile, rng);
  if (profile.adherence == AdherencePattern::kDeclining) {
    h.tonight_usage_h = std::clamp(decline_to + 0.3 * rng.Normal(), 0.3, 4.0);
  }
  return h;
}

}  // namespace vigil::sim
