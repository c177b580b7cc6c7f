// Adherence rules over a patient's nightly usage history (pure functions, CLINICAL.md):
//  - compliance: >= 4 h on >= 70 % of the nights in 30 consecutive days (CMS rule). Evaluated on
//    the 30 therapy days ending with the newest; nights without data count as 0 h. Met when
//    nights_at_least >= ceil(0.7 x 30) = 21 (so it can be met before 30 days have passed).
//  - decline warning: the mean of the last 7 nights is < 4 h, or is >= 1.5 h below the mean of
//    the 30 nights before those 7. Needs 7 nights (and 37 for the second branch).
//  - adherence score, 0..100: 60 x (share of the last 30 nights with >= 4 h)
//                             + 40 x min(mean nightly use over those 30 nights, 7 h) / 7 h.
//    It rewards the compliance criterion first and the amount of use second; 7 h is the usual
//    sleep target beyond which more use adds nothing. Missing nights count as 0 h.
#pragma once

#include <span>
#include <string>

namespace vigil::ops {

struct AdherenceRules {
  double night_min_h = 4;         // a "used" night
  double compliance_share = 0.7;  // of the window's nights
  int window_nights = 30;
  int recent_nights = 7;
  double decline_mean_h = 4;    // warn when the recent mean is below
  double decline_drop_h = 1.5;  // ... or this far below the previous window's mean
};

struct AdherenceSummary {
  int nights = 0;           // nights in the compliance window that have passed (<= 30)
  int nights_at_least = 0;  // of those, nights with >= night_min_h
  bool compliance_met = false;
  double mean_recent_h = 0;    // last 7 nights (NaN when fewer)
  double mean_previous_h = 0;  // the 30 nights before those 7 (NaN when fewer)
  double mean_window_h = 0;    // last 30 nights (missing = 0)
  bool decline = false;
  std::string decline_reason;  // empty, "7-night mean < 4 h" or "1.5 h below 30-night mean"
  double score = 0;            // 0..100
};

// `usage_h` holds one value per consecutive therapy day, oldest first (0 = unused).
AdherenceSummary EvaluateAdherence(std::span<const double> usage_h, const AdherenceRules& rules);

}  // namespace vigil::ops
