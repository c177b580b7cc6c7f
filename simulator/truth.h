// Ground truth: what the simulator injected, for scoring Vigil's detections. One TruthEvent per
// injected condition with its device-time interval and the parameters it was generated with.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "operators/core/time.h"

namespace vigil::sim {

// Names (TruthKindName) match the episode names of `vigil replay` output where a detector
// exists (AFIB, VT, ...), so scoring can compare kind by kind.
enum class TruthKind : uint8_t {
  kAtrialFibrillation,       // AFIB
  kVentricularTachycardia,   // VT (>= 5 ventricular beats >= 100 bpm)
  kVentricularFibrillation,  // VF
  kPause,                    // PAUSE (one RR > 3 s)
  kAsystole,                 // ASYS (no QRS >= 4 s)
  kBradycardia,              // BRADY
  kTachycardia,              // TACHY
  kPvc,                      // PVC (isolated premature ventricular beat; not an alarm)
  kEcgNoise,                 // NOISE (motion artefact burst)
  kEcgLeadOff,               // LEADOFF
  kApnea,                    // APNEA
  kHypopnea,                 // HYPOPNEA
  kLargeLeak,                // LARGE_LEAK
  kDisconnection,            // DISCONNECTION
  kHypoventilation,          // HYPOVENTILATION (meets the AASM sleep-hypoventilation rule)
  kHypoventilationNearMiss,  // HYPOVENTILATION_NEAR_MISS (elevated, but the rule is not met)
  kAdherenceDecline,         // ADHERENCE_DECLINE
  kNonCompliance,            // NON_COMPLIANCE (< 4 h on >= 30 % of the 30 nights)
};
std::string_view TruthKindName(TruthKind kind);

struct TruthEvent {
  TruthKind kind{};
  ops::TimeUs start_us = 0;
  ops::TimeUs end_us = 0;
  // Generation parameters, e.g. {"rate_bpm", 152}; units in the name's suffix.
  std::vector<std::pair<std::string, double>> params;

  double Param(std::string_view name, double fallback = 0) const {
    for (const auto& [key, value] : params) {
      if (key == name) return value;
    }
    return fallback;
  }
};

// ISO 8601 UTC with microseconds, e.g. "2026-01-05T21:00:00.000000Z".
std::string IsoTime(ops::TimeUs t);

// One JSON Lines record:
// {"patient":"sim-00042","kind":"AFIB","start_us":..,"end_us":..,"start":"..Z","end":"..Z",
//  "t_start":12.0,"t_end":80.5,"params":{"rate_bpm":112.0}}
// `t_start`/`t_end` are seconds from `origin_us` (the stream start), the time base of
// `vigil replay` lines.
std::string TruthLine(std::string_view patient_id, const TruthEvent& event, ops::TimeUs origin_us);

}  // namespace vigil::sim
