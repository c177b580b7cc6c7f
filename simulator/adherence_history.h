// The previous 30 therapy days of a ventilated patient as mask-on / mask-off sessions, and the
// night schedule that continues them: therapy days run noon to noon in Europe/Copenhagen
// (OSCAR's day split; DST switches handled by the tz database), bedtime 22:00-23:30 local.
//
// Usage patterns: compliant (mean 5.5-8 h), declining (usual use for 23 nights, then the last
// 7 nights fall to 0.5-2.5 h with skipped nights) and non-compliant (mean 2-4 h). The truth is
// computed from the sessions generated, by the rules of CLINICAL.md, so it matches the data:
// ADHERENCE_DECLINE when the 7-night mean is < 4 h or >= 1.5 h below the 30-night mean;
// NON_COMPLIANCE when fewer than 70 % of the 30 nights have >= 4 h.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "operators/core/time.h"
#include "simulator/patient_profile.h"
#include "simulator/random.h"
#include "simulator/truth.h"

namespace vigil::sim {

inline constexpr const char* kTherapyTimeZone = "Europe/Copenhagen";

struct Session {
  ops::TimeUs start_us = 0;
  ops::TimeUs end_us = 0;
};

struct AdherenceHistory {
  std::vector<Session> sessions;  // the 30 days before the stream's therapy day, in order
  std::vector<double> usage_h;    // per therapy day, oldest first (30 values)
  double mean30_h = 0;
  double mean7_h = 0;
  double tonight_usage_h = 7;  // usage of the first simulated night
};

// Builds the history of the 30 therapy days before the one containing `stream_start_us`, and
// appends its truth. Deterministic in `rng`. Throws std::runtime_error if the tz database lacks
// Europe/Copenhagen.
AdherenceHistory BuildAdherenceHistory(const PatientProfile& profile, ops::TimeUs stream_start_us,
                                       Rng& rng, std::vector<TruthEvent>& truth);

// Usage in hours of a night of `profile` drawn for a future night (after the history).
double DrawNightUsage(const PatientProfile& profile, Rng& rng);

// Start of the therapy session on the evening of local day `days_after` days after the local
// date of `reference_us` (Europe/Copenhagen), at 22:00 + `minutes_after_22` local.
ops::TimeUs LocalBedtime(ops::TimeUs reference_us, int days_after, double minutes_after_22);

// Noon (local) that starts the therapy day containing `t`, as UTC microseconds.
ops::TimeUs TherapyDayStart(ops::TimeUs t);

}  // namespace vigil::sim
