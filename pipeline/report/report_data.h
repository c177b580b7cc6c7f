// What a patient report shows, independent of where it came from (an offline replay of a
// recording, or the Kafka topics of a running service).
#pragma once

#include <string>
#include <vector>

#include "operators/core/event.h"
#include "vigil/v1/aggregate.pb.h"
#include "vigil/v1/alert.pb.h"

namespace vigil::report {

// A stretch of ECG around an arrhythmia alert, with the beats detected in it.
struct EcgStrip {
  v1::Alert alert;  // the alert the strip explains (its RAISED record)
  ops::TimeUs start_us = 0;
  double sample_rate_hz = 0;
  std::vector<float> millivolts;
  std::vector<ops::Beat> beats;  // beats inside the strip
};

struct ReportData {
  std::string patient_id;
  std::string source;  // e.g. "offline replay of WFDB record 201"
  std::string time_zone = "Europe/Copenhagen";
  std::vector<v1::Alert> alerts;  // every alert record, in order
  std::vector<EcgStrip> strips;
  std::vector<ops::Episode> episodes;  // closed episodes (rhythms, respiratory events, ...)
  std::vector<v1::Aggregate> minutes;  // WINDOW_KIND_MINUTE
  std::vector<v1::Aggregate> days;     // WINDOW_KIND_THERAPY_DAY
  std::vector<v1::Aggregate> rolling;  // WINDOW_KIND_ROLLING_30_DAYS
};

}  // namespace vigil::report
