#include "pipeline/service/telemetry_decoder.h"

#include <fmt/format.h>

#include <cmath>

#include "vigil/v1/telemetry.pb.h"

namespace vigil::service {
namespace {

using v1::SignalFrame;

// Factor from the frame's unit to the operators' canonical unit of `kind`; 0 = incompatible.
double UnitFactor(v1::SignalKind kind, v1::Unit unit) {
  if (unit == v1::UNIT_UNSPECIFIED) return 1;  // producers that omit it send the canonical unit
  switch (kind) {
    case v1::SIGNAL_KIND_ECG: return unit == v1::UNIT_MILLIVOLT ? 1 : 0;
    case v1::SIGNAL_KIND_AIRWAY_PRESSURE: return unit == v1::UNIT_CM_H2O ? 1 : 0;
    case v1::SIGNAL_KIND_FLOW:
    case v1::SIGNAL_KIND_LEAK:
    case v1::SIGNAL_KIND_MINUTE_VENTILATION:
      if (unit == v1::UNIT_LITRE_PER_MINUTE) return 1;
      return unit == v1::UNIT_LITRE_PER_SECOND ? 60 : 0;
    case v1::SIGNAL_KIND_CO2_WAVEFORM:
    case v1::SIGNAL_KIND_TRANSCUTANEOUS_CO2:
      if (unit == v1::UNIT_MM_HG) return 1;
      return unit == v1::UNIT_KILOPASCAL ? 7.50062 : 0;
    case v1::SIGNAL_KIND_SPO2: return unit == v1::UNIT_PERCENT ? 1 : 0;
    case v1::SIGNAL_KIND_PULSE_RATE:
    case v1::SIGNAL_KIND_RESPIRATORY_RATE: return unit == v1::UNIT_PER_MINUTE ? 1 : 0;
    case v1::SIGNAL_KIND_TIDAL_VOLUME: return unit == v1::UNIT_MILLILITRE ? 1 : 0;
    default: return 0;
  }
}

Rejection Reject(v1::DeadLetterReason reason, std::string detail, int index = -1) {
  return Rejection{reason, std::move(detail), index};
}

bool Finite(std::optional<double> v) { return !v || std::isfinite(*v); }

}  // namespace

std::variant<DecodedRecord, Rejection> DecodeTelemetry(const std::optional<std::string>& key,
                                                       const std::optional<std::string>& value,
                                                       const DecodeLimits& limits) {
  if (!value) return Reject(v1::DEAD_LETTER_REASON_UNDECODABLE, "null value (tombstone)");
  if (value->size() > limits.max_record_bytes) {
    return Reject(v1::DEAD_LETTER_REASON_OVERSIZED,
                  fmt::format("record size = {} bytes > {}", value->size(), limits.max_record_bytes));
  }
  v1::TelemetryEnvelope envelope;
  if (!envelope.ParseFromString(*value)) {
    return Reject(v1::DEAD_LETTER_REASON_UNDECODABLE,
                  fmt::format("not a vigil.v1.TelemetryEnvelope ({} bytes)", value->size()));
  }
  if (envelope.patient_id().empty()) {
    return Reject(v1::DEAD_LETTER_REASON_MISSING_PATIENT, "patient_id is empty");
  }
  if (!key || *key != envelope.patient_id()) {
    // The detail never repeats either id: DLQ readers may log it.
    return Reject(v1::DEAD_LETTER_REASON_KEY_MISMATCH,
                  key ? "record key differs from patient_id" : "record has no key");
  }
  if (static_cast<size_t>(envelope.frames_size()) > limits.max_frames_per_record) {
    return Reject(v1::DEAD_LETTER_REASON_OVERSIZED,
                  fmt::format("frames = {} > {}", envelope.frames_size(), limits.max_frames_per_record));
  }
  DecodedRecord out;
  out.patient_id = envelope.patient_id();
  out.frames.reserve(envelope.frames_size());
  for (int i = 0; i < envelope.frames_size(); ++i) {
    const SignalFrame& f = envelope.frames(i);
    const auto field = [i](std::string_view name) { return fmt::format("frames[{}].{}", i, name); };
    if (f.kind() <= v1::SIGNAL_KIND_UNSPECIFIED || f.kind() >= ops::kSignalCount) {
      return Reject(v1::DEAD_LETTER_REASON_INVALID_FRAME,
                    fmt::format("{} = {}: unknown signal kind", field("kind"), static_cast<int>(f.kind())), i);
    }
    const double factor = UnitFactor(f.kind(), f.unit());
    if (factor == 0) {
      return Reject(v1::DEAD_LETTER_REASON_INVALID_FRAME,
                    fmt::format("{} = {}: not a unit of {}", field("unit"), v1::Unit_Name(f.unit()),
                                v1::SignalKind_Name(f.kind())), i);
    }
    if (!std::isfinite(f.sample_rate_hz()) || !std::isfinite(f.gain()) || !std::isfinite(f.offset())) {
      return Reject(v1::DEAD_LETTER_REASON_NON_FINITE_VALUE,
                    fmt::format("{} = {}, gain = {}, offset = {}", field("sample_rate_hz"),
                                f.sample_rate_hz(), f.gain(), f.offset()), i);
    }
    if (f.sample_rate_hz() <= 0 || f.sample_rate_hz() > 1e5) {
      return Reject(v1::DEAD_LETTER_REASON_INVALID_FRAME,
                    fmt::format("{} = {}: must be in (0, 100000]", field("sample_rate_hz"),
                                f.sample_rate_hz()), i);
    }
    if (f.gain() == 0) {
      return Reject(v1::DEAD_LETTER_REASON_INVALID_FRAME, fmt::format("{} = 0", field("gain")), i);
    }
    if (static_cast<size_t>(f.samples_size()) > limits.max_samples_per_frame) {
      return Reject(v1::DEAD_LETTER_REASON_OVERSIZED,
                    fmt::format("{} = {} > {}", field("samples"), f.samples_size(),
                                limits.max_samples_per_frame), i);
    }
    DecodedFrame& d = out.frames.emplace_back();
    d.device_id = f.device_id();
    d.signal = static_cast<ops::Signal>(f.kind());
    d.lead = f.kind() == v1::SIGNAL_KIND_ECG ? static_cast<int>(f.lead()) : 0;
    d.sequence = f.sequence();
    d.first_sample_us = f.first_sample_time_us();
    d.sample_rate_hz = f.sample_rate_hz();
    d.values.resize(f.samples_size());
    const double gain = f.gain() * factor;
    const double offset = f.offset() * factor;
    for (int s = 0; s < f.samples_size(); ++s) {
      d.values[s] = static_cast<float>(f.samples(s) * gain + offset);
      if (!std::isfinite(d.values[s])) {
        return Reject(v1::DEAD_LETTER_REASON_NON_FINITE_VALUE,
                      fmt::format("{} = {}: out of float range", field(fmt::format("samples[{}]", s)),
                                  f.samples(s)), i);
      }
    }
    out.samples += d.values.size();
  }
  for (int i = 0; i < envelope.events_size(); ++i) {
    const v1::DeviceEvent& e = envelope.events(i);
    DecodedEvent& d = out.events.emplace_back();
    d.device_id = e.device_id();
    d.sequence = e.sequence();
    d.view.time_us = e.time_us();
    const int index = envelope.frames_size() + i;  // events follow frames in item numbering
    switch (e.event_case()) {
      case v1::DeviceEvent::kSession:
        d.view.type = e.session().action() == v1::TherapySession::ACTION_START
                          ? ops::DeviceEventView::Type::kSessionStart
                          : e.session().action() == v1::TherapySession::ACTION_STOP
                                ? ops::DeviceEventView::Type::kSessionStop
                                : ops::DeviceEventView::Type::kOther;
        break;
      case v1::DeviceEvent::kSettings: {
        const auto& s = e.settings();
        const auto opt = [](bool has, double v) { return has ? std::optional<double>(v) : std::nullopt; };
        const std::optional<double> values[] = {
            opt(s.has_ipap_cm_h2o(), s.ipap_cm_h2o()), opt(s.has_epap_cm_h2o(), s.epap_cm_h2o()),
            opt(s.has_cpap_cm_h2o(), s.cpap_cm_h2o()), opt(s.has_intended_leak_lpm(), s.intended_leak_lpm()),
            opt(s.has_min_pressure_cm_h2o(), s.min_pressure_cm_h2o()),
            opt(s.has_max_pressure_cm_h2o(), s.max_pressure_cm_h2o()),
            opt(s.has_backup_rate_bpm(), s.backup_rate_bpm())};
        for (const auto& v : values) {
          if (!Finite(v)) {
            return Reject(v1::DEAD_LETTER_REASON_NON_FINITE_VALUE,
                          fmt::format("events[{}].settings: non-finite value", i), index);
          }
        }
        d.view.type = ops::DeviceEventView::Type::kSettings;
        if (s.has_cpap_cm_h2o()) d.view.ipap_cm_h2o = d.view.epap_cm_h2o = s.cpap_cm_h2o();
        if (s.has_ipap_cm_h2o()) d.view.ipap_cm_h2o = s.ipap_cm_h2o();
        if (s.has_epap_cm_h2o()) d.view.epap_cm_h2o = s.epap_cm_h2o();
        if (s.has_intended_leak_lpm()) d.view.intended_leak_lpm = s.intended_leak_lpm();
        break;
      }
      case v1::DeviceEvent::kStatus:
        d.view.type = e.status().code() == v1::DeviceStatus::CODE_ECG_LEAD_OFF
                          ? ops::DeviceEventView::Type::kLeadOff
                          : e.status().code() == v1::DeviceStatus::CODE_OK
                                ? ops::DeviceEventView::Type::kLeadOn
                                : ops::DeviceEventView::Type::kOther;
        break;
      case v1::DeviceEvent::EVENT_NOT_SET:
        d.view.type = ops::DeviceEventView::Type::kOther;
        break;
    }
  }
  return out;
}

}  // namespace vigil::service
