#include "pipeline/replay/card_source.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "operators/io/resmed_card.h"

namespace vigil::replay {
namespace {

struct Encoding {
  v1::SignalKind kind;
  v1::Unit unit;
  double gain;  // physical units per count
};

Encoding EncodingOf(ops::Signal s) {
  switch (s) {
    case ops::Signal::kFlow:
      return {v1::SIGNAL_KIND_FLOW, v1::UNIT_LITRE_PER_MINUTE, 0.01};
    case ops::Signal::kAirwayPressure:
      return {v1::SIGNAL_KIND_AIRWAY_PRESSURE, v1::UNIT_CM_H2O, 0.01};
    case ops::Signal::kLeak:
      return {v1::SIGNAL_KIND_LEAK, v1::UNIT_LITRE_PER_MINUTE, 0.01};
    case ops::Signal::kSpo2:
      return {v1::SIGNAL_KIND_SPO2, v1::UNIT_PERCENT, 0.1};
    case ops::Signal::kPulseRate:
      return {v1::SIGNAL_KIND_PULSE_RATE, v1::UNIT_PER_MINUTE, 0.1};
    case ops::Signal::kTidalVolume:
      return {v1::SIGNAL_KIND_TIDAL_VOLUME, v1::UNIT_MILLILITRE, 0.1};
    case ops::Signal::kRespiratoryRate:
      return {v1::SIGNAL_KIND_RESPIRATORY_RATE, v1::UNIT_PER_MINUTE, 0.01};
    case ops::Signal::kMinuteVentilation:
      return {v1::SIGNAL_KIND_MINUTE_VENTILATION, v1::UNIT_LITRE_PER_MINUTE, 0.01};
    default:
      return {v1::SIGNAL_KIND_UNSPECIFIED, v1::UNIT_UNSPECIFIED, 1};
  }
}

class CardSource : public TelemetrySource {
 public:
  CardSource(const std::filesystem::path& dir, const SourceOptions& options) : options_(options) {
    if (!(options.frame_s > 0)) {
      throw std::invalid_argument(fmt::format("frame_s = {}: must be > 0", options.frame_s));
    }
    io::ResmedCardOptions o;
    o.time_zone = options.device_time_zone;
    card_ = io::ReadResmedCard(dir, o);
    items_ = io::CardTelemetry(card_, options.frame_s);
    origin_ = items_.empty() ? options.start_us : items_.front().time_us;
  }

  bool Next(v1::TelemetryEnvelope& envelope) override {
    if (position_ >= items_.size()) return false;
    envelope.Clear();
    envelope.set_patient_id(options_.patient_id);
    envelope.set_gateway_id("vigil-replay");
    const auto& item = items_[position_++];
    if (item.event) {
      auto* e = envelope.add_events();
      e->set_device_id(card_.device_id);
      e->set_time_us(item.event->time_us);
      e->set_sequence(++event_sequence_);
      using Type = ops::DeviceEventView::Type;
      if (item.event->type == Type::kSessionStart || item.event->type == Type::kSessionStop) {
        e->mutable_session()->set_action(item.event->type == Type::kSessionStart
                                             ? v1::TherapySession::ACTION_START
                                             : v1::TherapySession::ACTION_STOP);
      } else if (item.event->type == Type::kSettings) {
        auto* s = e->mutable_settings();
        if (!std::isnan(item.event->epap_cm_h2o)) s->set_epap_cm_h2o(item.event->epap_cm_h2o);
        if (!std::isnan(item.event->ipap_cm_h2o)) s->set_ipap_cm_h2o(item.event->ipap_cm_h2o);
      }
      return true;
    }
    const auto enc = EncodingOf(item.series->signal);
    const auto& values = item.series->values;
    size_t i = item.begin;
    while (i < item.end) {
      while (i < item.end && std::isnan(values[i])) ++i;
      const size_t b = i;
      while (i < item.end && !std::isnan(values[i])) ++i;
      if (i == b) continue;
      auto* f = envelope.add_frames();
      f->set_device_id(card_.device_id);
      f->set_kind(enc.kind);
      f->set_unit(enc.unit);
      f->set_sample_rate_hz(item.series->sample_rate_hz);
      f->set_first_sample_time_us(ops::SampleTime(
          item.series->first_sample_us, item.series->sample_rate_hz, static_cast<int64_t>(b)));
      f->set_sequence(++frame_sequence_[enc.kind]);
      f->set_gain(enc.gain);
      f->set_offset(0);
      auto* samples = f->mutable_samples();
      samples->Reserve(static_cast<int>(i - b));
      for (size_t k = b; k < i; ++k) {
        samples->Add(static_cast<int32_t>(std::lround(values[k] / enc.gain)));
      }
    }
    return true;
  }

  ops::TimeUs origin_us() const override { return origin_; }

  std::string description() const override {
    return fmt::format("ResMed card {} ({} STR days, {} DATALOG nights, {} signal segments)",
                       card_.device_id, card_.days.size(), card_.datalog_days.size(),
                       card_.series.size());
  }

 private:
  SourceOptions options_;
  io::ResmedCard card_;
  std::vector<io::TelemetryItem> items_;  // points into card_ (never moved after construction)
  size_t position_ = 0;
  ops::TimeUs origin_ = 0;
  uint64_t event_sequence_ = 0;
  std::map<int, uint64_t> frame_sequence_;
};

}  // namespace

std::unique_ptr<TelemetrySource> OpenResmedCard(const std::filesystem::path& card_dir,
                                                const SourceOptions& options) {
  return std::make_unique<CardSource>(card_dir, options);
}

}  // namespace vigil::replay
