#include "pipeline/service/synthetic_telemetry.h"

#include <fmt/format.h>

#include <cmath>

namespace vigil::service {

std::string SyntheticPatientId(const SyntheticOptions& options, int index) {
  return fmt::format("{}-{:05d}", options.patient_prefix, index);
}

size_t GenerateTelemetry(const SyntheticOptions& options,
                         const std::function<void(const v1::TelemetryEnvelope&)>& sink,
                         uint64_t* samples) {
  const auto frames = static_cast<int64_t>(std::llround(options.seconds / options.frame_seconds));
  const auto ecg_n = static_cast<int>(std::llround(options.ecg_hz * options.frame_seconds));
  const double vent_hz = 25;
  const auto vent_n = static_cast<int>(std::llround(vent_hz * options.frame_seconds));
  size_t envelopes = 0;
  v1::TelemetryEnvelope envelope;
  for (int64_t k = 0; k < frames; ++k) {
    const int64_t t0 =
        options.start_us + static_cast<int64_t>(std::llround(k * options.frame_seconds * 1e6));
    for (int p = 0; p < options.patients; ++p) {
      if (options.drop_every > 0 && (k + p) % options.drop_every == options.drop_every - 1)
        continue;
      envelope.Clear();
      envelope.set_patient_id(SyntheticPatientId(options, p));
      envelope.set_gateway_id(fmt::format("gw-{}", p % 7));
      envelope.set_sent_time_us(t0);
      const double bpm = 60 + (p * 7) % 30;
      auto* ecg = envelope.add_frames();
      ecg->set_device_id(fmt::format("holter-{}", p));
      ecg->set_kind(v1::SIGNAL_KIND_ECG);
      ecg->set_unit(v1::UNIT_MILLIVOLT);
      ecg->set_sample_rate_hz(options.ecg_hz);
      ecg->set_first_sample_time_us(t0);
      ecg->set_sequence(static_cast<uint64_t>(k));
      ecg->set_gain(0.005);
      ecg->set_lead(v1::ECG_LEAD_MLII);
      for (int i = 0; i < ecg_n; ++i) {
        const double t = (static_cast<double>(k) * ecg_n + i) / options.ecg_hz;
        const double phase = std::fmod(t * bpm / 60.0, 1.0);
        const double qrs = std::exp(-std::pow((phase - 0.3) / 0.012, 2)) * 1.2;
        const double twave = std::exp(-std::pow((phase - 0.6) / 0.05, 2)) * 0.25;
        ecg->add_samples(static_cast<int32_t>(
            std::lround((qrs + twave + 0.02 * std::sin(t * 0.7 + p)) / 0.005)));
      }
      if (samples) *samples += static_cast<uint64_t>(ecg_n);
      if (options.ventilation) {
        for (const auto kind : {v1::SIGNAL_KIND_FLOW, v1::SIGNAL_KIND_AIRWAY_PRESSURE}) {
          auto* f = envelope.add_frames();
          f->set_device_id(fmt::format("niv-{}", p));
          f->set_kind(kind);
          f->set_unit(kind == v1::SIGNAL_KIND_FLOW ? v1::UNIT_LITRE_PER_MINUTE : v1::UNIT_CM_H2O);
          f->set_sample_rate_hz(vent_hz);
          f->set_first_sample_time_us(t0);
          f->set_sequence(static_cast<uint64_t>(k));
          f->set_gain(0.1);
          for (int i = 0; i < vent_n; ++i) {
            const double t = (static_cast<double>(k) * vent_n + i) / vent_hz;
            const double breath = std::sin(2 * M_PI * t * (14 + p % 5) / 60.0);
            const double value =
                kind == v1::SIGNAL_KIND_FLOW ? 30 * breath : 12 + 6 * std::max(0.0, breath);
            f->add_samples(static_cast<int32_t>(std::lround(value / 0.1)));
          }
          if (samples) *samples += static_cast<uint64_t>(vent_n);
        }
      }
      sink(envelope);
      ++envelopes;
    }
  }
  return envelopes;
}

}  // namespace vigil::service
