#include "pipeline/simulate/simulated_telemetry.h"

#include <fmt/format.h>

#include <stdexcept>

namespace vigil::simulate {
namespace {

v1::MaskType ToMaskType(sim::MaskKind mask) {
  switch (mask) {
    case sim::MaskKind::kNasal:
      return v1::MASK_TYPE_NASAL;
    case sim::MaskKind::kNasalPillows:
      return v1::MASK_TYPE_NASAL_PILLOWS;
    case sim::MaskKind::kFullFace:
      return v1::MASK_TYPE_FULL_FACE;
  }
  return v1::MASK_TYPE_UNSPECIFIED;
}

void AddSamples(v1::SignalFrame& frame, const std::vector<int32_t>& samples) {
  auto* out = frame.mutable_samples();
  out->Resize(static_cast<int>(samples.size()), 0);
  std::copy(samples.begin(), samples.end(), out->mutable_data());
}

}  // namespace

bool EnvelopeEncoder::Encode(const sim::PatientBlock& block, v1::TelemetryEnvelope& envelope) {
  envelope.Clear();
  const auto& p = *profile_;
  if (block.ecg.empty() && block.flow.empty() && block.co2.empty() && block.events.empty()) {
    return false;
  }
  envelope.set_patient_id(p.patient_id);
  envelope.set_gateway_id(p.gateway_id);
  // A gateway sends shortly after the block ends; a deterministic 150-550 ms latency keeps
  // runs byte-identical (processing uses device times, never this).
  const ops::TimeUs block_end = block.start_us + block.seconds * ops::kMicrosPerSecond;
  const auto latency_ms = static_cast<int64_t>((envelopes_ * 7919) % 400);
  envelope.set_sent_time_us(block_end + 150'000 + latency_ms * 1000);
  ++envelopes_;

  if (!block.ecg.empty()) {
    auto* f = envelope.add_frames();
    f->set_device_id(p.ecg_device_id);
    f->set_kind(v1::SIGNAL_KIND_ECG);
    f->set_unit(v1::UNIT_MILLIVOLT);
    f->set_sample_rate_hz(sim::EcgGenerator::kRateHz);
    f->set_first_sample_time_us(block.start_us);
    f->set_sequence(++ecg_sequence_);
    f->set_gain(sim::EcgGenerator::kGainMv);
    f->set_offset(0);
    f->set_lead(v1::ECG_LEAD_SINGLE);
    f->set_adc_min(sim::EcgGenerator::kAdcMin);
    f->set_adc_max(sim::EcgGenerator::kAdcMax);
    AddSamples(*f, block.ecg);
  }
  if (!block.flow.empty()) {
    auto* f = envelope.add_frames();
    f->set_device_id(p.niv_device_id);
    f->set_kind(v1::SIGNAL_KIND_FLOW);
    f->set_unit(v1::UNIT_LITRE_PER_MINUTE);
    f->set_sample_rate_hz(sim::VentilationGenerator::kRateHz);
    f->set_first_sample_time_us(block.niv_first_us);
    f->set_sequence(++flow_sequence_);
    f->set_gain(sim::VentilationGenerator::kFlowGainLpm);
    AddSamples(*f, block.flow);
    auto* q = envelope.add_frames();
    q->set_device_id(p.niv_device_id);
    q->set_kind(v1::SIGNAL_KIND_AIRWAY_PRESSURE);
    q->set_unit(v1::UNIT_CM_H2O);
    q->set_sample_rate_hz(sim::VentilationGenerator::kRateHz);
    q->set_first_sample_time_us(block.niv_first_us);
    q->set_sequence(++pressure_sequence_);
    q->set_gain(sim::VentilationGenerator::kPressureGainCmH2o);
    AddSamples(*q, block.pressure);
  }
  if (!block.co2.empty()) {
    auto* f = envelope.add_frames();
    f->set_device_id(p.co2_device_id);
    f->set_kind(v1::SIGNAL_KIND_TRANSCUTANEOUS_CO2);
    f->set_unit(v1::UNIT_MM_HG);
    f->set_sample_rate_hz(sim::Co2Generator::kRateHz);
    f->set_first_sample_time_us(block.co2_first_us);
    f->set_sequence(++co2_sequence_);
    f->set_gain(sim::Co2Generator::kGainMmHg);
    AddSamples(*f, block.co2);
  }
  using Type = sim::SimDeviceEvent::Type;
  for (const auto& e : block.events) {
    auto* out = envelope.add_events();
    out->set_time_us(e.time_us);
    if (e.device == sim::SimDevice::kEcg) {
      out->set_device_id(p.ecg_device_id);
      out->set_sequence(++ecg_event_sequence_);
    } else {
      out->set_device_id(p.niv_device_id);
      out->set_sequence(++niv_event_sequence_);
    }
    switch (e.type) {
      case Type::kSessionStart:
        out->mutable_session()->set_action(v1::TherapySession::ACTION_START);
        break;
      case Type::kSessionStop:
        out->mutable_session()->set_action(v1::TherapySession::ACTION_STOP);
        break;
      case Type::kSettings: {
        auto* s = out->mutable_settings();
        s->set_mode(v1::THERAPY_MODE_BILEVEL_ST);
        s->set_ipap_cm_h2o(p.ipap_cm_h2o);
        s->set_epap_cm_h2o(p.epap_cm_h2o);
        s->set_backup_rate_bpm(p.backup_rate_bpm);
        s->set_mask_type(ToMaskType(p.mask));
        s->set_intended_leak_lpm(p.intended_leak_lpm);
        break;
      }
      case Type::kLeadOff:
        out->mutable_status()->set_code(v1::DeviceStatus::CODE_ECG_LEAD_OFF);
        out->mutable_status()->set_detail("electrode contact lost");
        break;
      case Type::kLeadOk:
        out->mutable_status()->set_code(v1::DeviceStatus::CODE_OK);
        out->mutable_status()->set_detail("electrode contact restored");
        break;
    }
  }
  return true;
}

struct SimulatedCohort::Patient {
  sim::PatientProfile profile;
  sim::PatientSimulator simulator;
  EnvelopeEncoder encoder;
  sim::PatientBlock block;
  Patient(const sim::PatientProfile& p, const sim::SimulationOptions& o)
      : profile(p), simulator(profile, o), encoder(profile) {}
};

SimulatedCohort::SimulatedCohort(const CohortOptions& options) : options_(options) {
  if (options.patients < 1) throw std::invalid_argument("patients must be >= 1");
  if (options.block_seconds < 1 || options.block_seconds > 60) {
    throw std::invalid_argument(
        fmt::format("block_seconds = {}: must be in [1, 60]", options.block_seconds));
  }
  patients_.reserve(options.patients);
  for (uint32_t i = 0; i < options.patients; ++i) {
    patients_.push_back(std::make_unique<Patient>(
        sim::DrawProfile(options.simulation.seed, options.first_index + i), options.simulation));
  }
  now_us_ = options.simulation.start_us;
}

SimulatedCohort::~SimulatedCohort() = default;

const sim::PatientProfile& SimulatedCohort::profile(uint32_t i) const {
  return patients_.at(i)->profile;
}

bool SimulatedCohort::NextEnvelope(uint32_t i, v1::TelemetryEnvelope& envelope,
                                   std::vector<sim::TruthEvent>& truth) {
  auto& patient = *patients_.at(i);
  const int64_t left_s = (options_.simulation.end_us - now_us_) / ops::kMicrosPerSecond;
  const int seconds = static_cast<int>(std::min<int64_t>(options_.block_seconds, left_s));
  if (seconds < 1) {
    envelope.Clear();
    return false;
  }
  patient.simulator.Next(seconds, patient.block);
  for (auto& t : patient.block.truth) truth.push_back(std::move(t));
  const bool any = patient.encoder.Encode(patient.block, envelope);
  if (i + 1 == patients_.size()) now_us_ += seconds * ops::kMicrosPerSecond;
  return any;
}

namespace {

class PatientSource : public replay::TelemetrySource {
 public:
  PatientSource(std::unique_ptr<sim::PatientSimulator> simulator,
                std::vector<sim::TruthEvent>* truth, int block_seconds, ops::TimeUs end_us)
      : simulator_(std::move(simulator)),
        encoder_(simulator_->profile()),
        truth_(truth),
        block_seconds_(block_seconds),
        origin_us_(simulator_->now_us()),
        end_us_(end_us) {}

  bool Next(v1::TelemetryEnvelope& envelope) override {
    while (simulator_->now_us() < end_us_) {
      const int64_t left_s = (end_us_ - simulator_->now_us()) / ops::kMicrosPerSecond;
      if (left_s < 1) break;
      simulator_->Next(static_cast<int>(std::min<int64_t>(block_seconds_, left_s)), block_);
      if (truth_ != nullptr) {
        for (auto& t : block_.truth) truth_->push_back(std::move(t));
      }
      if (encoder_.Encode(block_, envelope)) return true;
    }
    return false;
  }
  ops::TimeUs origin_us() const override { return origin_us_; }
  std::string description() const override {
    return fmt::format("simulated patient {}", simulator_->profile().patient_id);
  }

 private:
  std::unique_ptr<sim::PatientSimulator> simulator_;
  EnvelopeEncoder encoder_;
  sim::PatientBlock block_;
  std::vector<sim::TruthEvent>* truth_;
  int block_seconds_;
  ops::TimeUs origin_us_;
  ops::TimeUs end_us_;
};

}  // namespace

std::unique_ptr<replay::TelemetrySource> MakePatientSource(
    std::unique_ptr<sim::PatientSimulator> simulator, std::vector<sim::TruthEvent>* truth,
    int block_seconds) {
  if (block_seconds < 1) throw std::invalid_argument("block_seconds must be >= 1");
  const ops::TimeUs end = simulator->end_us();
  if (end == INT64_MAX) throw std::invalid_argument("a patient source needs a finite end");
  return std::make_unique<PatientSource>(std::move(simulator), truth, block_seconds, end);
}

std::unique_ptr<replay::TelemetrySource> MakePatientSource(const sim::PatientProfile& profile,
                                                           const sim::SimulationOptions& options,
                                                           std::vector<sim::TruthEvent>* truth,
                                                           int block_seconds) {
  return MakePatientSource(std::make_unique<sim::PatientSimulator>(profile, options), truth,
                           block_seconds);
}

}  // namespace vigil::simulate
