#include "operators/adherence/adherence_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace vigil::ops {

AdherenceSummary EvaluateAdherence(std::span<const double> usage_h, const AdherenceRules& r) {
  AdherenceSummary s;
  const size_t n = usage_h.size();
  const size_t window = static_cast<size_t>(r.window_nights);
  const size_t recent = static_cast<size_t>(r.recent_nights);
  const auto last = usage_h.subspan(n - std::min(n, window));
  s.nights = static_cast<int>(last.size());
  double sum = 0;
  for (double h : last) {
    s.nights_at_least += h >= r.night_min_h;
    sum += h;
  }
  const int needed = static_cast<int>(std::ceil(r.compliance_share * r.window_nights - 1e-9));
  s.compliance_met = s.nights_at_least >= needed;
  s.mean_window_h = sum / static_cast<double>(window);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.mean_recent_h = nan;
  s.mean_previous_h = nan;
  if (n >= recent) {
    double rs = 0;
    for (size_t i = n - recent; i < n; ++i) rs += usage_h[i];
    s.mean_recent_h = rs / static_cast<double>(recent);
    if (s.mean_recent_h < r.decline_mean_h) {
      s.decline = true;
      s.decline_reason = fmt::format("{}-night mean < {} h", r.recent_nights, r.decline_mean_h);
    }
    if (n >= recent + window) {
      double ps = 0;
      for (size_t i = n - recent - window; i < n - recent; ++i) ps += usage_h[i];
      s.mean_previous_h = ps / static_cast<double>(window);
      // 1e-9: usage in minutes / 60 is not exact in binary; "1.5 h below" includes 1.5 h.
      if (!s.decline && s.mean_recent_h <= s.mean_previous_h - r.decline_drop_h + 1e-9) {
        s.decline = true;
        s.decline_reason =
            fmt::format("{} h below the previous {}-night mean", r.decline_drop_h, r.window_nights);
      }
    }
  }
  const double share = static_cast<double>(s.nights_at_least) / static_cast<double>(window);
  s.score = 60.0 * share + 40.0 * std::min(s.mean_window_h, 7.0) / 7.0;
  return s;
}

}  // namespace vigil::ops
