#include "simulator/patient_simulator.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace vigil::sim {
namespace {

constexpr ops::TimeUs kSecond = ops::kMicrosPerSecond;
constexpr ops::TimeUs kHour = 3600 * kSecond;

// How often a condition occurs (per hour of monitoring) and with what size.
struct EcgSpec {
  TruthKind kind;
  double per_hour;
  double min_s, max_s;        // duration (VT: from count and rate)
  double rate_lo, rate_hi;    // bpm
  int count_lo, count_hi;     // VT beats
  double level_lo, level_hi;  // mV
};

std::vector<EcgSpec> EcgSpecs(CardiacCondition condition) {
  // Artefacts and lead-off happen to everyone.
  std::vector<EcgSpec> specs = {
      {TruthKind::kEcgNoise, 1.0, 3, 12, 0, 0, 0, 0, 0.4, 1.5},
      {TruthKind::kEcgLeadOff, 0.1, 5, 40, 0, 0, 0, 0, 0, 0},
  };
  switch (condition) {
    case CardiacCondition::kNormalSinus:
      break;
    case CardiacCondition::kParoxysmalAf:
      specs.push_back({TruthKind::kAtrialFibrillation, 0.4, 60, 1200, 85, 140, 0, 0, 0.03, 0.1});
      break;
    case CardiacCondition::kSinusNodeDisease:
      specs.push_back({TruthKind::kPause, 0.8, 3.1, 3.8, 0, 0, 0, 0, 0, 0});
      specs.push_back({TruthKind::kBradycardia, 0.4, 30, 120, 32, 38, 0, 0, 0, 0});
      specs.push_back({TruthKind::kAsystole, 0.05, 4.5, 8, 0, 0, 0, 0, 0, 0});
      break;
    case CardiacCondition::kVentricularEctopy:
      specs.push_back({TruthKind::kVentricularTachycardia, 0.4, 0, 0, 110, 180, 5, 20, 0, 0});
      specs.push_back({TruthKind::kVentricularFibrillation, 0.02, 5, 15, 0, 0, 0, 0, 0.25, 0.6});
      break;
    case CardiacCondition::kTachyEpisodes:
      specs.push_back({TruthKind::kTachycardia, 0.5, 30, 180, 145, 175, 0, 0, 0, 0});
      break;
  }
  return specs;
}

}  // namespace

void PatientBlock::Clear() {
  start_us = 0;
  seconds = 0;
  ecg.clear();
  flow.clear();
  pressure.clear();
  co2.clear();
  events.clear();
  truth.clear();
}

PatientSimulator::PatientSimulator(const PatientProfile& profile, const SimulationOptions& options)
    : profile_(profile),
      options_(options),
      plan_rng_(DeriveSeed(profile.seed, 0x504c414e)),
      night_rng_(DeriveSeed(profile.seed, 0x4e49474854)) {
  if (!(options.event_rate >= 0)) throw std::invalid_argument("event_rate must be >= 0");
  if (options.end_us <= options.start_us) throw std::invalid_argument("end must be after start");
  now_us_ = options.start_us;
  ecg_planned_until_ = options.start_us;
  ecg_last_plan_end_ = options.start_us;
  if (profile.has_niv()) {
    history_ = BuildAdherenceHistory(profile, options.start_us, night_rng_, pending_truth_);
    const double usage = std::max(history_.tonight_usage_h, 0.5);
    session_ = {options.start_us, options.start_us + ops::FromSeconds(std::round(usage * 3600))};
  }
  if (profile.has_ecg()) {
    ecg_ = std::make_unique<EcgGenerator>(profile, options.start_us,
                                          DeriveSeed(profile.seed, 0x454347));
  }
}

PatientSimulator::~PatientSimulator() = default;
PatientSimulator::PatientSimulator(PatientSimulator&&) noexcept = default;
PatientSimulator& PatientSimulator::operator=(PatientSimulator&&) noexcept = default;

void PatientSimulator::ForceEcgPlans(std::vector<EcgPlan> plans) {
  forced_ecg_ = true;
  if (!ecg_) return;
  std::sort(plans.begin(), plans.end(),
            [](const EcgPlan& a, const EcgPlan& b) { return a.start_us < b.start_us; });
  for (const auto& p : plans) ecg_->Schedule(p);
}

void PatientSimulator::ForceNivPlans(std::vector<NivPlan> plans) {
  forced_niv_ = true;
  std::sort(plans.begin(), plans.end(),
            [](const NivPlan& a, const NivPlan& b) { return a.start_us < b.start_us; });
  forced_niv_plans_ = std::move(plans);
}

void PatientSimulator::PlanEcgUntil(ops::TimeUs horizon) {
  const auto specs = EcgSpecs(profile_.condition);
  while (ecg_planned_until_ < horizon) {
    const ops::TimeUs from = ecg_planned_until_;
    const ops::TimeUs to = from + kHour;
    std::vector<EcgPlan> plans;
    for (const auto& spec : specs) {
      const double rate = spec.per_hour * options_.event_rate;
      if (rate <= 0) continue;
      // Poisson arrivals: exponential gaps.
      double t = plan_rng_.Exponential(3600.0 / rate);
      while (t < 3600.0) {
        EcgPlan p;
        p.kind = spec.kind;
        p.start_us = from + ops::FromSeconds(std::round(t * 250) / 250);
        p.rate_bpm =
            spec.rate_hi > 0 ? std::round(plan_rng_.Uniform(spec.rate_lo, spec.rate_hi)) : 0;
        p.count =
            spec.count_hi > 0 ? static_cast<int>(plan_rng_.Int(spec.count_lo, spec.count_hi)) : 0;
        p.level = spec.level_hi > 0 ? plan_rng_.Uniform(spec.level_lo, spec.level_hi) : 0;
        const double duration = spec.kind == TruthKind::kVentricularTachycardia
                                    ? p.count * 60.0 / p.rate_bpm
                                    : plan_rng_.Uniform(spec.min_s, spec.max_s);
        p.end_us = p.start_us + ops::FromSeconds(std::round(duration * 250) / 250);
        plans.push_back(p);
        t += plan_rng_.Exponential(3600.0 / rate);
      }
    }
    std::sort(plans.begin(), plans.end(),
              [](const EcgPlan& a, const EcgPlan& b) { return a.start_us < b.start_us; });
    for (const auto& p : plans) {
      // Conditions are kept apart (>= 20 s) so that each can be scored on its own, and none
      // starts in the first 20 s (detectors need a few beats of history).
      if (p.start_us < ecg_last_plan_end_ + 20 * kSecond) continue;
      if (p.start_us < options_.start_us + 20 * kSecond) continue;
      ecg_->Schedule(p);
      ecg_last_plan_end_ = p.end_us;
    }
    ecg_planned_until_ = to;
  }
}

void PatientSimulator::StartSession(std::vector<TruthEvent>& truth) {
  in_session_ = true;
  const uint64_t night_seed = DeriveSeed(profile_.seed, 0x4e494748, static_cast<uint64_t>(night_));
  Rng rng(night_seed);
  niv_ = std::make_unique<VentilationGenerator>(profile_, session_.start_us,
                                                DeriveSeed(night_seed, 1));
  const double duration_s = ops::ToSeconds(session_.end_us - session_.start_us);
  co2_ = std::make_unique<Co2Generator>(
      PlanCo2Night(profile_, duration_s, rng, session_.start_us, truth), DeriveSeed(night_seed, 2));
  if (forced_niv_) {
    for (const auto& p : forced_niv_plans_) niv_->Schedule(p);
    return;
  }
  // Residual events on therapy: a few per hour at most for most patients.
  struct NivSpec {
    TruthKind kind;
    double per_hour, min_s, max_s, level_lo, level_hi;
  };
  // Hypopneas drop flow to 25-42 % (a 58-75 % drop): without SpO2 the detectors apply the
  // device convention (<= 50 %), and the measured amplitude carries cardiogenic oscillation and
  // noise on top, so drops closer to 50 % would be ambiguous truth. Disconnections last
  // minutes (mask pulled off in sleep with the blower running), not seconds.
  const NivSpec specs[] = {
      {TruthKind::kApnea, rng.Uniform(0.3, 4), 11, 35, 0.0, 0.04},
      {TruthKind::kHypopnea, rng.Uniform(0.5, 6), 12, 45, 0.25, 0.42},
      {TruthKind::kLargeLeak, 0.15, 60, 900, 28, 60},
      {TruthKind::kDisconnection, 0.05, 45, 300, 150, 190},
  };
  std::vector<NivPlan> plans;
  for (const auto& spec : specs) {
    const double rate = spec.per_hour * options_.event_rate;
    if (rate <= 0) continue;
    double t = 120 + rng.Exponential(3600.0 / rate);
    while (t < duration_s) {
      const double d = rng.Uniform(spec.min_s, spec.max_s);
      NivPlan p{spec.kind, session_.start_us + ops::FromSeconds(std::round(t * 25) / 25),
                session_.start_us + ops::FromSeconds(std::round((t + d) * 25) / 25),
                rng.Uniform(spec.level_lo, spec.level_hi)};
      if (p.end_us < session_.end_us - 30 * kSecond) plans.push_back(p);
      t += d + rng.Exponential(3600.0 / rate);
    }
  }
  std::sort(plans.begin(), plans.end(),
            [](const NivPlan& a, const NivPlan& b) { return a.start_us < b.start_us; });
  ops::TimeUs last_end = 0;
  for (const auto& p : plans) {
    // A minute of normal breathing between events: the detectors' pre-event baseline.
    if (p.start_us < last_end + 60 * kSecond) continue;
    niv_->Schedule(p);
    last_end = p.end_us;
  }
}

void PatientSimulator::EmitTruth(std::vector<TruthEvent>& from, std::vector<TruthEvent>& to) const {
  for (auto& e : from) {
    if (e.start_us >= options_.end_us) continue;
    if (e.end_us > options_.end_us) {
      e.end_us = options_.end_us;
      e.params.push_back({"clipped", 1});
    }
    to.push_back(std::move(e));
  }
  from.clear();
}

void PatientSimulator::Next(int seconds, PatientBlock& block) {
  if (seconds < 1) throw std::invalid_argument("block must be >= 1 s");
  block.Clear();
  const ops::TimeUs t0 = now_us_;
  const ops::TimeUs t1 = t0 + seconds * kSecond;
  block.start_us = t0;
  block.seconds = seconds;
  using Type = SimDeviceEvent::Type;

  if (first_block_ && profile_.has_niv()) {
    // The device uploads its stored 30-day history when the gateway connects.
    if (!history_.sessions.empty()) {
      block.events.push_back({SimDevice::kVentilator, Type::kSettings,
                              history_.sessions.front().start_us - 60 * kSecond});
    }
    for (const auto& s : history_.sessions) {
      block.events.push_back({SimDevice::kVentilator, Type::kSessionStart, s.start_us});
      block.events.push_back({SimDevice::kVentilator, Type::kSessionStop, s.end_us});
    }
  }
  first_block_ = false;
  const size_t live_events = block.events.size();

  if (ecg_) {
    const int n = seconds * 250;
    if (!forced_ecg_) PlanEcgUntil(ecg_->PlanningHorizon(n));
    block.ecg_first_index = ecg_->next_sample();
    block.ecg.resize(static_cast<size_t>(n));
    ecg_->Generate(block.ecg.data(), n, block.events, pending_truth_);
  }

  if (profile_.has_niv()) {
    ops::TimeUs cursor = t0;
    while (cursor < t1) {
      if (!in_session_) {
        if (session_.start_us >= t1) break;
        block.events.push_back({SimDevice::kVentilator, Type::kSettings, session_.start_us});
        block.events.push_back({SimDevice::kVentilator, Type::kSessionStart, session_.start_us});
        StartSession(pending_truth_);
      }
      const ops::TimeUs from = std::max(cursor, session_.start_us);
      const ops::TimeUs to = std::min(t1, session_.end_us);
      if (to > from) {
        const int n_niv = static_cast<int>((to - from) / 40'000);
        const int n_co2 = static_cast<int>((to - from) / kSecond);
        if (block.flow.empty()) {
          block.niv_first_us = from;
          block.co2_first_us = from;
        }
        const size_t f0 = block.flow.size(), c0 = block.co2.size();
        block.flow.resize(f0 + static_cast<size_t>(n_niv));
        block.pressure.resize(f0 + static_cast<size_t>(n_niv));
        block.co2.resize(c0 + static_cast<size_t>(n_co2));
        niv_->Generate(block.flow.data() + f0, block.pressure.data() + f0, n_niv, pending_truth_);
        co2_->Generate(block.co2.data() + c0, n_co2);
      }
      if (session_.end_us > t1) break;
      block.events.push_back({SimDevice::kVentilator, Type::kSessionStop, session_.end_us});
      in_session_ = false;
      niv_.reset();
      co2_.reset();
      cursor = session_.end_us;
      // The next night with therapy (skipped nights have no session).
      double usage = 0;
      do {
        ++night_;
        usage = DrawNightUsage(profile_, night_rng_);
      } while (usage < 5.0 / 60);
      const ops::TimeUs bedtime =
          LocalBedtime(options_.start_us, night_, night_rng_.Uniform(0, 90));
      session_ = {bedtime, bedtime + ops::FromSeconds(std::round(usage * 3600))};
    }
  }
  std::stable_sort(
      block.events.begin() + static_cast<std::ptrdiff_t>(live_events), block.events.end(),
      [](const SimDeviceEvent& a, const SimDeviceEvent& b) { return a.time_us < b.time_us; });
  EmitTruth(pending_truth_, block.truth);
  now_us_ = t1;
}

}  // namespace vigil::sim
