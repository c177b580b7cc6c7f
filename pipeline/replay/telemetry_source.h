// Recordings as telemetry: a WFDB record (or, where supported, a ResMed SD card) turned into the
// same vigil.v1.TelemetryEnvelope stream a live gateway sends, one envelope per `frame_s` of
// device time. Used by the offline replay, by `vigil replay --kafka` and by tests, so every path
// sees identical frames.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "operators/core/time.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil::replay {

struct SourceOptions {
  std::string patient_id = "replay-patient";
  // Device time of the first sample when the recording does not say (WFDB records usually do
  // not): 2026-01-01T00:00:00Z, so that replays are deterministic.
  ops::TimeUs start_us = 1'767'225'600'000'000;
  double frame_s = 1.0;
  // Local time zone of device clocks that record local time without a zone (ResMed cards).
  std::string device_time_zone = "Europe/Copenhagen";
};

class TelemetrySource {
 public:
  virtual ~TelemetrySource() = default;
  // Fills the next envelope (frames and device events in device-time order); false at the end.
  virtual bool Next(v1::TelemetryEnvelope& envelope) = 0;
  // Device time that replay output measures `t`, `start` and `end` from.
  virtual ops::TimeUs origin_us() const = 0;
  // E.g. "WFDB record 201 (2 signals, 360 Hz, 650000 samples)".
  virtual std::string description() const = 0;
};

// Opens `path`: a WFDB record given without extension (a `<path>.hea` exists) or a folder that
// a registered card reader recognises. Throws std::runtime_error naming the path and why when it
// is neither or cannot be read.
std::unique_ptr<TelemetrySource> OpenRecording(const std::filesystem::path& path,
                                               const SourceOptions& options);

// The WFDB form of OpenRecording.
std::unique_ptr<TelemetrySource> OpenWfdbRecord(const std::filesystem::path& record,
                                                const SourceOptions& options);

}  // namespace vigil::replay
