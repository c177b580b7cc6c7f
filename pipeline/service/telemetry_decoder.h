// Decoding and validation of one vigil.telemetry.v1 record: bytes in, either frames in physical
// units ready for PatientAnalysis or the reason the record goes to the dead-letter topic.
// Record-level checks (size, decodable, patient id and key, frame count) are here; each frame
// and device event goes through analysis::DecodeFrame / DecodeDeviceEvent, the same functions
// the offline replay uses, so both accept and reject exactly the same frames.
//
// Pure and thread-safe (no shared state): the graph runs it in parallel. Never throws for bad
// data: every data problem is a Rejection value.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "operators/core/signal.h"
#include "operators/core/stream_operator.h"
#include "pipeline/analysis/frame_decoder.h"
#include "pipeline/analysis/patient_analysis.h"

namespace vigil::v1 {
class TelemetryEnvelope;
}

namespace vigil::service {

using Rejection = analysis::Rejection;

// Patient ids (record keys) longer than this are refused: every output is keyed by the id, and
// a huge one would push alerts, snapshots and dead letters over the broker's message limit.
inline constexpr size_t kMaxPatientIdBytes = 256;

struct DecodeLimits {
  size_t max_record_bytes = 4u << 20;
  size_t max_frames_per_record = 256;
  analysis::DecodeLimits frame;
};

struct DecodedFrame {
  std::string device_id;
  ops::Signal signal = ops::Signal::kUnknown;
  int lead = 0;
  uint64_t sequence = 0;
  ops::TimeUs first_sample_us = 0;
  double sample_rate_hz = 0;
  std::vector<float> values;  // physical units
};

// The frame as PatientAnalysis::OnFrame takes it (views into `frame`, which must outlive it);
// `arrival_us` is the record's processing time (0: unknown).
inline analysis::FrameView ViewOf(const DecodedFrame& frame, ops::TimeUs arrival_us = 0) {
  analysis::FrameView view;
  view.device_id = frame.device_id;
  view.signal = frame.signal;
  view.lead = frame.lead;
  view.sequence = frame.sequence;
  view.first_sample_us = frame.first_sample_us;
  view.sample_rate_hz = frame.sample_rate_hz;
  view.values = frame.values;
  view.arrival_us = arrival_us;
  return view;
}

struct DecodedEvent {
  std::string device_id;
  ops::DeviceEventView view;
};

struct DecodedRecord {
  std::string patient_id;
  std::vector<DecodedFrame> frames;
  std::vector<DecodedEvent> events;
  size_t samples = 0;
};

// Checks, in order: size, decodable, patient id present and equal to the key, frame count,
// then every frame (analysis::DecodeFrame). One bad frame rejects the record (item_index names
// it): a gateway that sends one corrupt frame has likely corrupted its neighbours.
std::variant<DecodedRecord, Rejection> DecodeTelemetry(const std::optional<std::string>& key,
                                                       const std::optional<std::string>& value,
                                                       const DecodeLimits& limits);

// The checks after parsing, on an envelope already in memory (the offline replay's): frame
// count, then every frame. The patient id is taken as it is.
std::variant<DecodedRecord, Rejection> DecodeEnvelope(const v1::TelemetryEnvelope& envelope,
                                                      const DecodeLimits& limits);

}  // namespace vigil::service
