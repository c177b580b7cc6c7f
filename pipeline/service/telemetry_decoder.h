// Decoding and validation of one vigil.telemetry.v1 record: bytes in, either frames in physical
// units ready for PatientAnalysis or the reason the record goes to the dead-letter topic.
//
// Pure and thread-safe (no shared state): the graph runs it in parallel. Never throws for bad
// data: every data problem is a Rejection value.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "operators/core/signal.h"
#include "operators/core/stream_operator.h"
#include "vigil/v1/dead_letter.pb.h"

namespace vigil::service {

struct DecodeLimits {
  size_t max_record_bytes = 4u << 20;
  size_t max_frames_per_record = 256;
  size_t max_samples_per_frame = 1u << 16;
};

struct DecodedFrame {
  std::string device_id;
  ops::Signal signal = ops::Signal::kUnknown;
  int lead = 0;
  uint64_t sequence = 0;
  ops::TimeUs first_sample_us = 0;
  double sample_rate_hz = 0;
  std::vector<float> values;  // physical, in the operators' canonical unit (signal.h)
};

struct DecodedEvent {
  std::string device_id;
  uint64_t sequence = 0;
  ops::DeviceEventView view;
};

struct DecodedRecord {
  std::string patient_id;
  std::vector<DecodedFrame> frames;
  std::vector<DecodedEvent> events;
  size_t samples = 0;
};

struct Rejection {
  v1::DeadLetterReason reason = v1::DEAD_LETTER_REASON_UNSPECIFIED;
  std::string detail;  // field, value and limit, e.g. "frames[2].sample_rate_hz = 0"
  int item_index = -1;
};

// Checks, in order: size, decodable, patient id present and equal to the key, frame count,
// known signal kind and compatible unit, sample rate > 0 and finite, gain != 0 and finite,
// finite offset and event values, samples per frame. Converts L/s to L/min and kPa to mmHg.
std::variant<DecodedRecord, Rejection> DecodeTelemetry(const std::optional<std::string>& key,
                                                       const std::optional<std::string>& value,
                                                       const DecodeLimits& limits);

}  // namespace vigil::service
