#include "pipeline/analysis/frame_decoder.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace vigil::analysis {

ops::Signal ToSignal(v1::SignalKind kind) {
  const int k = static_cast<int>(kind);
  if (k <= 0 || k >= ops::kSignalCount) return ops::Signal::kUnknown;
  return static_cast<ops::Signal>(k);
}

v1::SignalKind ToSignalKind(ops::Signal signal) {
  return static_cast<v1::SignalKind>(static_cast<int>(signal));
}

namespace {

// The unit operators receive for a kind (ops::Signal) and the factor from `unit` to it; 0 when
// `unit` is not a unit of that kind. An unset unit is the kind's own (older producers).
double UnitFactor(ops::Signal signal, v1::Unit unit) {
  constexpr double kMmHgPerKpa = 7.50062;
  if (unit == v1::UNIT_UNSPECIFIED) return 1;
  switch (signal) {
    case ops::Signal::kEcg:
      return unit == v1::UNIT_MILLIVOLT ? 1 : 0;
    case ops::Signal::kAirwayPressure:
      return unit == v1::UNIT_CM_H2O ? 1 : 0;
    case ops::Signal::kFlow:
    case ops::Signal::kLeak:
    case ops::Signal::kMinuteVentilation:
      return unit == v1::UNIT_LITRE_PER_MINUTE ? 1 : unit == v1::UNIT_LITRE_PER_SECOND ? 60 : 0;
    case ops::Signal::kCo2Waveform:
    case ops::Signal::kTranscutaneousCo2:
    case ops::Signal::kArterialPressure:
      return unit == v1::UNIT_MM_HG ? 1 : unit == v1::UNIT_KILOPASCAL ? kMmHgPerKpa : 0;
    case ops::Signal::kSpo2:
      return unit == v1::UNIT_PERCENT ? 1 : 0;
    case ops::Signal::kPulseRate:
    case ops::Signal::kRespiratoryRate:
      return unit == v1::UNIT_PER_MINUTE ? 1 : 0;
    case ops::Signal::kTidalVolume:
      return unit == v1::UNIT_MILLILITRE ? 1 : 0;
    case ops::Signal::kPlethysmogram:
      return 1;  // only its shape is used
    case ops::Signal::kUnknown:
      break;
  }
  return 0;
}

}  // namespace

std::optional<Rejection> DecodeFrame(const v1::SignalFrame& frame, int index,
                                     const DecodeLimits& limits, std::vector<float>& values) {
  auto reject = [&](v1::DeadLetterReason reason, std::string detail) {
    return Rejection{reason, fmt::format("frames[{}].{}", index, detail), index};
  };
  if (ToSignal(frame.kind()) == ops::Signal::kUnknown) {
    return reject(v1::DEAD_LETTER_REASON_INVALID_FRAME,
                  fmt::format("kind = {}: unknown signal kind", static_cast<int>(frame.kind())));
  }
  const double rate = frame.sample_rate_hz();
  if (!std::isfinite(rate)) {
    return reject(v1::DEAD_LETTER_REASON_NON_FINITE_VALUE,
                  fmt::format("sample_rate_hz = {}", rate));
  }
  if (rate < limits.min_sample_rate_hz || rate > limits.max_sample_rate_hz) {
    return reject(v1::DEAD_LETTER_REASON_INVALID_FRAME,
                  fmt::format("sample_rate_hz = {}: must be in [{}, {}]", rate,
                              limits.min_sample_rate_hz, limits.max_sample_rate_hz));
  }
  if (!std::isfinite(frame.gain()) || !std::isfinite(frame.offset())) {
    return reject(
        v1::DEAD_LETTER_REASON_NON_FINITE_VALUE,
        fmt::format("gain = {}, offset = {}: must be finite", frame.gain(), frame.offset()));
  }
  if (frame.gain() == 0) {
    return reject(v1::DEAD_LETTER_REASON_INVALID_FRAME, "gain = 0: must be non-zero");
  }
  if (static_cast<size_t>(frame.samples_size()) > limits.max_samples_per_frame) {
    return reject(v1::DEAD_LETTER_REASON_OVERSIZED,
                  fmt::format("samples: {} samples, at most {}", frame.samples_size(),
                              limits.max_samples_per_frame));
  }
  if (frame.samples_size() == 0) {
    return reject(v1::DEAD_LETTER_REASON_INVALID_FRAME, "samples: empty frame");
  }
  if (frame.device_id().empty()) {
    return reject(v1::DEAD_LETTER_REASON_INVALID_FRAME, "device_id: empty");
  }
  const ops::Signal signal = ToSignal(frame.kind());
  const double factor = UnitFactor(signal, frame.unit());
  if (factor == 0) {
    return reject(v1::DEAD_LETTER_REASON_INVALID_FRAME,
                  fmt::format("unit = {}: not a unit of {}", v1::Unit_Name(frame.unit()),
                              ops::SignalName(signal)));
  }
  values.resize(static_cast<size_t>(frame.samples_size()));
  // Physical value in the operators' unit (kPa -> mmHg, L/s -> L/min).
  const double gain = frame.gain() * factor;
  const double offset = frame.offset() * factor;
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  // Saturated samples keep their rail value: signal-quality operators see the clipping.
  for (int i = 0; i < frame.samples_size(); ++i) {
    const double v = frame.samples(i) * gain + offset;
    if (!(std::fabs(v) <= kFloatMax)) {
      return reject(v1::DEAD_LETTER_REASON_NON_FINITE_VALUE,
                    fmt::format("samples[{}] = {}: times gain {} plus offset {} overflows a float",
                                i, frame.samples(i), frame.gain(), frame.offset()));
    }
    values[static_cast<size_t>(i)] = static_cast<float>(v);
  }
  return std::nullopt;
}

std::optional<ops::DeviceEventView> DecodeDeviceEvent(const v1::DeviceEvent& event) {
  ops::DeviceEventView view;
  view.time_us = event.time_us();
  switch (event.event_case()) {
    case v1::DeviceEvent::kSession:
      if (event.session().action() == v1::TherapySession::ACTION_START) {
        view.type = ops::DeviceEventView::Type::kSessionStart;
      } else if (event.session().action() == v1::TherapySession::ACTION_STOP) {
        view.type = ops::DeviceEventView::Type::kSessionStop;
      } else {
        return std::nullopt;
      }
      return view;
    case v1::DeviceEvent::kSettings: {
      view.type = ops::DeviceEventView::Type::kSettings;
      const auto& s = event.settings();
      if (s.has_ipap_cm_h2o()) view.ipap_cm_h2o = s.ipap_cm_h2o();
      if (s.has_epap_cm_h2o()) view.epap_cm_h2o = s.epap_cm_h2o();
      if (s.has_cpap_cm_h2o()) view.epap_cm_h2o = s.cpap_cm_h2o();
      if (s.has_intended_leak_lpm()) view.intended_leak_lpm = s.intended_leak_lpm();
      return view;
    }
    case v1::DeviceEvent::kStatus:
      if (event.status().code() == v1::DeviceStatus::CODE_ECG_LEAD_OFF) {
        view.type = ops::DeviceEventView::Type::kLeadOff;
        return view;
      }
      if (event.status().code() == v1::DeviceStatus::CODE_OK) {
        view.type = ops::DeviceEventView::Type::kLeadOn;
        return view;
      }
      return std::nullopt;
    case v1::DeviceEvent::EVENT_NOT_SET:
      break;
  }
  return std::nullopt;
}

}  // namespace vigil::analysis
