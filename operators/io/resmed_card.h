// A ResMed AirSense 10 / AirCurve 10 SD card turned into the telemetry a live device sends:
// per-signal chunks in physical units (ops::Signal units) and device events (therapy session
// start/stop, settings), in device time converted to UTC, plus the device's own summaries
// (STR.edf) and scored events (*_EVE.edf) as reference values.
//
// Device clock and zone: ResMed writes local wall-clock time without a zone (EDF header start
// date/time, STR.edf minutes after local noon). ResmedCardOptions::time_zone names the IANA zone
// the device clock was set to (default Europe/Copenhagen) and every time is converted with the
// OS tz database (date/tz). Local times that do not exist (spring-forward hour) map to the
// instant of the change; repeated local times (fall-back hour) take the earlier instant -
// a recording that starts inside the repeated hour is therefore placed an hour early, which is
// the only interpretation the file allows. `clock_offset_s` corrects a device clock known to be
// off (added to every device time).
//
// Files read (layout of ../shared/data/resmed): Identification.tgt, STR.edf, SETTINGS/ (listed
// only), DATALOG/<yyyymmdd>/<stamp>_{BRP,PLD,SAD,EVE}.edf. CSL (Cheyne-Stokes) files are
// ignored. A file that is present but malformed fails fast with io::EdfError naming the file and
// the field; a card without STR.edf or DATALOG fails with CardError.
#pragma once

#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "operators/core/signal.h"
#include "operators/core/stream_operator.h"
#include "operators/core/time.h"

namespace vigil::io {

class CardError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ResmedCardOptions {
  std::string time_zone = "Europe/Copenhagen";
  double clock_offset_s = 0;
  bool read_signals = true;  // false: summaries, events and sessions only (fast)
};

// One recorded signal segment (one file's channel), physical units of ops::Signal.
struct CardSeries {
  ops::Signal signal = ops::Signal::kUnknown;
  ops::TimeUs first_sample_us = 0;
  double sample_rate_hz = 0;
  std::vector<float> values;  // NaN where the device marks the sample invalid
  std::string file;           // source file name, for messages
  ops::TimeUs end_us() const {
    return ops::SampleTime(first_sample_us, sample_rate_hz, static_cast<int64_t>(values.size()));
  }
};

// An event the device scored itself (EVE file), e.g. "Obstructive Apnea", "Hypopnea".
struct CardScoredEvent {
  ops::TimeUs start_us = 0;  // the file's onset minus the duration (ResMed stamps the end)
  double duration_s = 0;
  std::string label;
};

// One STR.edf record: the device's summary of one therapy day (noon to noon, device local).
struct StrDay {
  std::string date;                // YYYY-MM-DD of the noon that starts the day
  double usage_min = 0;            // "Duration"
  int mask_events = 0;             // mask on + mask off count
  int sessions = 0;                // mask_events / 2
  double ahi = 0, hi = 0, ai = 0;  // events per hour
  double leak_p50_lpm = 0, leak_p95_lpm = 0;
  double rr_median = 0;  // breaths/min
  double vt_median_ml = 0;
  double mv_median_lpm = 0;
  int mode = -1;  // STR "Mode" (0 CPAP, 1 AutoSet, 3 S, 6 VAuto, ...)
  // Pressure settings of the day (cmH2O, NaN when not applicable): for CPAP both are the set
  // pressure; auto modes give the lower (epap) and upper (ipap) limits; bilevel EPAP and IPAP.
  double epap_cm_h2o = std::nan(""), ipap_cm_h2o = std::nan("");
  std::vector<std::pair<ops::TimeUs, ops::TimeUs>> sessions_utc;  // mask on/off (minute resolution)
  bool has_data() const { return usage_min > 0; }
};

struct ResmedCard {
  std::filesystem::path root;
  std::map<std::string, std::string> identification;  // Identification.tgt (#SRN, #PNA, ...)
  std::string device_id;                              // serial number, or "resmed"
  std::vector<CardSeries> series;                     // sorted by start time
  std::vector<ops::DeviceEventView> device_events;    // sorted by time
  std::vector<CardScoredEvent> scored_events;         // sorted by start
  std::vector<StrDay> days;                           // STR.edf order (by date)
  std::vector<std::string> datalog_days;              // DATALOG folder names (yyyymmdd)
};

// Reads the card. Throws CardError / EdfError (naming file and field) on malformed input, and
// std::runtime_error for an unknown time zone.
ResmedCard ReadResmedCard(const std::filesystem::path& root, const ResmedCardOptions& options = {});

// One element of the card's telemetry, in time order: a chunk of a series or a device event.
struct TelemetryItem {
  ops::TimeUs time_us = 0;
  const CardSeries* series = nullptr;  // chunk when set: values [begin, end) of *series
  size_t begin = 0, end = 0;
  const ops::DeviceEventView* event = nullptr;  // device event when set
  ops::Chunk chunk() const;
};

// The card as a live device would have streamed it: chunks of at most `chunk_s` seconds,
// interleaved with the device events by time. Pointers refer into `card`.
std::vector<TelemetryItem> CardTelemetry(const ResmedCard& card, double chunk_s = 60);

// Local wall-clock time in `zone` -> UTC microseconds (rules in the header comment).
ops::TimeUs LocalToUtc(const std::string& zone, int year, int month, int day, int hour, int minute,
                       double second);

}  // namespace vigil::io
