#include "pipeline/replay/telemetry_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "operators/io/wfdb_record.h"
#include "pipeline/replay/card_source.h"

namespace vigil::replay {
namespace {

// What a WFDB channel carries, from its description (the header's last field).
struct Channel {
  v1::SignalKind kind = v1::SIGNAL_KIND_UNSPECIFIED;  // unspecified: not sent
  v1::Unit unit = v1::UNIT_UNSPECIFIED;
  v1::EcgLead lead = v1::ECG_LEAD_UNSPECIFIED;
};

Channel ChannelOf(const std::string& description) {
  static const std::pair<const char*, v1::EcgLead> kLeads[] = {
      {"MLII", v1::ECG_LEAD_MLII},  {"MLI", v1::ECG_LEAD_I},   {"MLIII", v1::ECG_LEAD_III},
      {"I", v1::ECG_LEAD_I},        {"II", v1::ECG_LEAD_II},   {"III", v1::ECG_LEAD_III},
      {"aVR", v1::ECG_LEAD_AVR},    {"aVL", v1::ECG_LEAD_AVL}, {"aVF", v1::ECG_LEAD_AVF},
      {"V1", v1::ECG_LEAD_V1},      {"V2", v1::ECG_LEAD_V2},   {"V3", v1::ECG_LEAD_V3},
      {"V4", v1::ECG_LEAD_V4},      {"V5", v1::ECG_LEAD_V5},   {"V6", v1::ECG_LEAD_V6},
      {"V", v1::ECG_LEAD_V},        {"MCL", v1::ECG_LEAD_MCL}, {"MCL1", v1::ECG_LEAD_MCL},
      {"ECG", v1::ECG_LEAD_SINGLE}, {"", v1::ECG_LEAD_SINGLE}};
  for (const auto& [name, lead] : kLeads) {
    if (description == name) return {v1::SIGNAL_KIND_ECG, v1::UNIT_MILLIVOLT, lead};
  }
  if (description == "PLETH") return {v1::SIGNAL_KIND_PLETHYSMOGRAM, v1::UNIT_NORMALIZED, {}};
  if (description == "ABP" || description == "ART") {
    return {v1::SIGNAL_KIND_ARTERIAL_PRESSURE, v1::UNIT_MM_HG, {}};
  }
  return {};
}

class WfdbSource : public TelemetrySource {
 public:
  WfdbSource(const std::filesystem::path& record, const SourceOptions& options)
      : options_(options), record_(io::ReadWfdbRecord(record)) {
    if (!(options.frame_s > 0)) {
      throw std::invalid_argument(fmt::format("frame_s = {}: must be > 0", options.frame_s));
    }
    per_frame_ =
        std::max<int64_t>(1, std::llround(options.frame_s * record_.header.sampling_frequency));
    sequences_.assign(record_.header.signals.size(), 0);
    // Telemetry identifies a stream by device, kind and lead: a channel whose kind and lead
    // repeat an earlier one (vfdb labels both channels "ECG") would collide with it, and a
    // channel Vigil has no kind for (e.g. an impedance "RESP") must never be analysed as ECG:
    // neither is sent, and description() names them.
    std::vector<std::pair<v1::SignalKind, v1::EcgLead>> seen;
    for (const auto& spec : record_.header.signals) {
      Channel c = ChannelOf(spec.description);
      if (c.kind == v1::SIGNAL_KIND_UNSPECIFIED) {
        skipped_.push_back(fmt::format("'{}' (unknown channel)", spec.description));
      } else if (std::find(seen.begin(), seen.end(), std::pair{c.kind, c.lead}) != seen.end()) {
        if (c.lead == v1::ECG_LEAD_SINGLE &&
            std::find(seen.begin(), seen.end(), std::pair{c.kind, v1::ECG_LEAD_UNSPECIFIED}) ==
                seen.end()) {
          // A second unnamed ECG channel (vfdb names both "ECG"): another lead, which one
          // unknown.
          c.lead = v1::ECG_LEAD_UNSPECIFIED;
          seen.emplace_back(c.kind, c.lead);
        } else {
          skipped_.push_back(fmt::format("'{}' (repeats an earlier channel)", spec.description));
          c.kind = v1::SIGNAL_KIND_UNSPECIFIED;
        }
      } else {
        seen.emplace_back(c.kind, c.lead);
      }
      channels_.push_back(c);
    }
  }

  bool Next(v1::TelemetryEnvelope& envelope) override {
    const int64_t total = record_.header.num_samples;
    if (position_ >= total) return false;
    envelope.Clear();
    envelope.set_patient_id(options_.patient_id);
    envelope.set_gateway_id("vigil-replay");
    const int64_t n = std::min(per_frame_, total - position_);
    const double fs = record_.header.sampling_frequency;
    for (size_t s = 0; s < record_.header.signals.size(); ++s) {
      const Channel& c = channels_[s];
      if (c.kind == v1::SIGNAL_KIND_UNSPECIFIED) continue;
      const auto& spec = record_.header.signals[s];
      auto* f = envelope.add_frames();
      f->set_device_id("wfdb-" + record_.header.record_name);
      f->set_kind(c.kind);
      f->set_unit(c.unit);
      f->set_sample_rate_hz(fs);
      f->set_first_sample_time_us(ops::SampleTime(options_.start_us, fs, position_));
      f->set_sequence(++sequences_[s]);
      f->set_gain(1.0 / spec.gain);
      f->set_offset(-spec.baseline / spec.gain);
      f->set_lead(c.lead);
      const int bits = spec.adc_resolution > 0 ? spec.adc_resolution : 12;
      f->set_adc_min(spec.adc_zero - (1 << (bits - 1)));
      f->set_adc_max(spec.adc_zero + (1 << (bits - 1)) - 1);
      const auto& adc = record_.adc[s];
      auto* samples = f->mutable_samples();
      samples->Reserve(static_cast<int>(n));
      for (int64_t i = 0; i < n; ++i) samples->Add(adc[static_cast<size_t>(position_ + i)]);
    }
    position_ += n;
    return true;
  }

  ops::TimeUs origin_us() const override { return options_.start_us; }

  std::string description() const override {
    std::string text = fmt::format("WFDB record {} ({} signals, {} Hz, {} samples)",
                                   record_.header.record_name, record_.header.signals.size(),
                                   record_.header.sampling_frequency, record_.header.num_samples);
    for (const auto& skipped : skipped_) text += "; not sent: " + skipped;
    return text;
  }

 private:
  SourceOptions options_;
  io::WfdbRecord record_;
  int64_t per_frame_ = 0;
  int64_t position_ = 0;
  std::vector<uint64_t> sequences_;
  std::vector<Channel> channels_;     // per signal; kind unspecified: not sent
  std::vector<std::string> skipped_;  // the channels not sent, and why
};

}  // namespace

std::unique_ptr<TelemetrySource> OpenWfdbRecord(const std::filesystem::path& record,
                                                const SourceOptions& options) {
  try {
    return std::make_unique<WfdbSource>(record, options);
  } catch (const io::WfdbError& e) {
    throw std::runtime_error(e.what());
  }
}

std::unique_ptr<TelemetrySource> OpenRecording(const std::filesystem::path& path,
                                               const SourceOptions& options) {
  auto header = path;
  header += ".hea";
  if (std::filesystem::exists(header)) return OpenWfdbRecord(path, options);
  if (std::filesystem::exists(path / "STR.edf")) return OpenResmedCard(path, options);
  if (path.extension() == ".hea" || path.extension() == ".dat" || path.extension() == ".atr") {
    auto stem = path;
    return OpenWfdbRecord(stem.replace_extension(), options);
  }
  throw std::runtime_error(fmt::format(
      "{}: not a recording Vigil can replay (expected a WFDB record path without extension, "
      "with {}.hea beside it)",
      path.string(), path.filename().string()));
}

}  // namespace vigil::replay
