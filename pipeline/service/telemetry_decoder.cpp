#include "pipeline/service/telemetry_decoder.h"

#include <fmt/format.h>

#include "vigil/v1/telemetry.pb.h"

namespace vigil::service {
namespace {

Rejection Reject(v1::DeadLetterReason reason, std::string detail, int index = -1) {
  return Rejection{reason, std::move(detail), index};
}

}  // namespace

std::variant<DecodedRecord, Rejection> DecodeTelemetry(const std::optional<std::string>& key,
                                                       const std::optional<std::string>& value,
                                                       const DecodeLimits& limits) {
  if (!value) return Reject(v1::DEAD_LETTER_REASON_UNDECODABLE, "null value (tombstone)");
  if (key && key->size() > kMaxPatientIdBytes) {
    // Every output carries the patient id as its key: a huge one would make them too large.
    return Reject(v1::DEAD_LETTER_REASON_OVERSIZED,
                  fmt::format("record key = {} bytes: a patient id has at most {}", key->size(),
                              kMaxPatientIdBytes));
  }
  if (value->size() > limits.max_record_bytes) {
    return Reject(
        v1::DEAD_LETTER_REASON_OVERSIZED,
        fmt::format("record size = {} bytes: at most {}", value->size(), limits.max_record_bytes));
  }
  // One message per thread, cleared rather than rebuilt: protobuf keeps the frames and their
  // sample arrays allocated across Clear(), which saves several allocations per record.
  static thread_local v1::TelemetryEnvelope envelope;
  envelope.Clear();
  if (!envelope.ParseFromString(*value)) {
    return Reject(v1::DEAD_LETTER_REASON_UNDECODABLE,
                  fmt::format("not a vigil.v1.TelemetryEnvelope ({} bytes)", value->size()));
  }
  if (envelope.patient_id().empty()) {
    return Reject(v1::DEAD_LETTER_REASON_MISSING_PATIENT, "patient_id is empty");
  }
  if (!key || *key != envelope.patient_id()) {
    // The detail never repeats either id: dead-letter readers may log it.
    return Reject(v1::DEAD_LETTER_REASON_KEY_MISMATCH,
                  key ? "record key differs from patient_id" : "record has no key");
  }
  return DecodeEnvelope(envelope, limits);
}

std::variant<DecodedRecord, Rejection> DecodeEnvelope(const v1::TelemetryEnvelope& envelope,
                                                      const DecodeLimits& limits) {
  if (static_cast<size_t>(envelope.frames_size()) > limits.max_frames_per_record) {
    return Reject(v1::DEAD_LETTER_REASON_OVERSIZED,
                  fmt::format("frames = {}: at most {}", envelope.frames_size(),
                              limits.max_frames_per_record));
  }
  DecodedRecord out;
  out.patient_id = envelope.patient_id();
  out.frames.reserve(static_cast<size_t>(envelope.frames_size()));
  for (int i = 0; i < envelope.frames_size(); ++i) {
    const v1::SignalFrame& f = envelope.frames(i);
    DecodedFrame& d = out.frames.emplace_back();
    if (auto rejection = analysis::DecodeFrame(f, i, limits.frame, d.values)) return *rejection;
    d.device_id = f.device_id();
    d.signal = analysis::ToSignal(f.kind());
    d.lead = f.kind() == v1::SIGNAL_KIND_ECG ? static_cast<int>(f.lead()) : 0;
    d.sequence = f.sequence();
    d.first_sample_us = f.first_sample_time_us();
    d.sample_rate_hz = f.sample_rate_hz();
    out.samples += d.values.size();
  }
  for (const auto& e : envelope.events()) {
    if (auto view = analysis::DecodeDeviceEvent(e)) out.events.push_back({e.device_id(), *view});
  }
  return out;
}

}  // namespace vigil::service
