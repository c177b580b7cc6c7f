#include "pipeline/analysis/frame_decoder.h"

#include <fmt/format.h>

#include <cmath>

namespace vigil::analysis {

ops::Signal ToSignal(v1::SignalKind kind) {
  const int k = static_cast<int>(kind);
  if (k <= 0 || k >= ops::kSignalCount) return ops::Signal::kUnknown;
  return static_cast<ops::Signal>(k);
}

v1::SignalKind ToSignalKind(ops::Signal signal) {
  return static_cast<v1::SignalKind>(static_cast<int>(signal));
}

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
    return reject(v1::DEAD_LETTER_REASON_NON_FINITE_VALUE, fmt::format("sample_rate_hz = {}", rate));
  }
  if (rate < limits.min_sample_rate_hz || rate > limits.max_sample_rate_hz) {
    return reject(v1::DEAD_LETTER_REASON_INVALID_FRAME,
                  fmt::format("sample_rate_hz = {}: must be in [{}, {}]", rate,
                              limits.min_sample_rate_hz, limits.max_sample_rate_hz));
  }
  if (!std::isfinite(frame.gain()) || !std::isfinite(frame.offset())) {
    return reject(v1::DEAD_LETTER_REASON_NON_FINITE_VALUE,
                  fmt::format("gain = {}, offset = {}: must be finite", frame.gain(),
                              frame.offset()));
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
  values.resize(static_cast<size_t>(frame.samples_size()));
  const double gain = frame.gain();
  const double offset = frame.offset();
  // Saturated samples keep their rail value: signal-quality operators see the clipping.
  for (int i = 0; i < frame.samples_size(); ++i) {
    values[static_cast<size_t>(i)] = static_cast<float>(frame.samples(i) * gain + offset);
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
