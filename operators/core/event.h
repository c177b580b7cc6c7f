// What operators emit. Every time is device time (microseconds since the Unix epoch, UTC),
// already corrected for the emitting operator's filter delay.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "operators/core/time.h"

namespace vigil::ops {

// AAMI EC57 beat classes.
enum class BeatClass : char {
  kNormal = 'N',            // N, L, R, e, j
  kSupraventricular = 'S',  // A, a, J, S
  kVentricular = 'V',       // V, E
  kFusion = 'F',            // F
  kUnclassifiable = 'Q',    // /, f, Q
};

struct Beat {
  TimeUs time_us = 0;  // R-peak (fiducial point) time
  int64_t sample = 0;  // index of the fiducial point in the stream since its start
  BeatClass label = BeatClass::kNormal;
  float rr_s = 0;            // interval to the previous beat, 0 for the first
  float heart_rate_bpm = 0;  // by the monitor rule (12 RR, or 4 when RR > 1.2 s x3); 0 = n/a
};

struct Breath {
  TimeUs start_us = 0;  // start of inspiration
  TimeUs end_us = 0;    // end of expiration (= next start)
  float inspiratory_time_s = 0;
  float expiratory_time_s = 0;
  float tidal_volume_ml = 0;       // inspired volume
  float respiratory_rate_bpm = 0;  // 60 / breath duration
  float minute_ventilation_lpm = 0;
  float peak_inspiratory_flow_lpm = 0;
  std::optional<float> end_tidal_co2_mm_hg;  // when a capnogram is present
};

// Rhythms, respiratory events and technical conditions with a start and an end.
enum class EpisodeKind : uint8_t {
  // ECG (names as in `vigil replay` output)
  kAtrialFibrillation,       // AFIB
  kVentricularTachycardia,   // VT
  kVentricularFibrillation,  // VF
  kVentricularFlutter,       // VFL
  kAsystole,                 // ASYS
  kPause,                    // PAUSE
  kBradycardia,              // BRADY
  kExtremeBradycardia,       // XBRADY
  kTachycardia,              // TACHY
  kExtremeTachycardia,       // XTACHY
  kEcgNoise,                 // NOISE
  kEcgLeadOff,               // LEADOFF
  kEcgFlatLine,              // FLAT
  kEcgSaturation,            // SATURATION
  // Ventilation
  kApnea,          // APNEA
  kHypopnea,       // HYPOPNEA
  kLargeLeak,      // LARGE_LEAK
  kDisconnection,  // DISCONNECTION
  // CO2
  kSleepHypoventilation,  // HYPOVENTILATION
  kHypercapnia,           // HYPERCAPNIA
  kCo2RisingTrend,        // CO2_TREND
  // Adherence
  kNonCompliance,     // NON_COMPLIANCE
  kAdherenceDecline,  // ADHERENCE_DECLINE
  // Any signal
  kSignalLost,     // SIGNAL_LOST
  kDeviceOffline,  // DEVICE_OFFLINE (raised by the runtime, not by operators)
};
std::string_view EpisodeName(EpisodeKind kind);

struct Measure {
  std::string name;  // e.g. "heart_rate", "rr_irregularity"
  double value = 0;
  std::string unit;  // e.g. "bpm", "s", "mmHg"
};

struct Limit {
  std::string name;  // e.g. "hr_low"
  double value = 0;
  std::string unit;
  std::string comparison;  // "<", "<=", ">", ">="
};

// Why an episode was detected: what an alert's evidence is built from.
struct Explanation {
  std::vector<Measure> measures;
  std::vector<Limit> limits;
  std::string algorithm;  // e.g. "ecg.af.petrenas2015"
  std::string version;    // e.g. "1.0.0"
  std::string rule;       // e.g. "irregular RR without P waves, episode >= 30 s"
  std::string note;       // e.g. which hypopnea rule was used
};

// An episode is emitted when it is confirmed (kOpened, with its true start, possibly in the
// past), may be updated while it lasts, and is emitted once more when it ends (kClosed, with
// `end_us`). Operators that only know episodes after the fact emit kClosed alone.
struct Episode {
  enum class Phase : uint8_t { kOpened, kUpdated, kClosed };
  EpisodeKind kind{};
  Phase phase = Phase::kOpened;
  TimeUs start_us = 0;
  TimeUs end_us = 0;  // 0 while open
  Explanation why;
};

// A measurement for aggregates and trends (e.g. heart rate each beat, leak each second).
struct Measurement {
  std::string name;
  double value = 0;
  TimeUs time_us = 0;
};

// A therapy day closed by the adherence operator (noon to noon in the patient's time zone).
struct TherapyDay {
  std::string date;     // local date of the noon that starts the day, YYYY-MM-DD
  TimeUs start_us = 0;  // [start, end) in UTC
  TimeUs end_us = 0;
  double usage_min = 0;
  int sessions = 0;
  TimeUs first_mask_on_us = 0;
  TimeUs last_mask_off_us = 0;
};

using Event = std::variant<Beat, Breath, Episode, Measurement, TherapyDay>;
using Events = std::vector<Event>;

}  // namespace vigil::ops
