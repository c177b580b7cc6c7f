#include "simulator/ventilation_generator.h"

#include <algorithm>
#include <cmath>

#include "simulator/sine_table.h"

namespace vigil::sim {
namespace {
constexpr double kDt = 1.0 / VentilationGenerator::kRateHz;
constexpr double kPi = 3.14159265358979323846;
}  // namespace

VentilationGenerator::VentilationGenerator(const PatientProfile& profile, ops::TimeUs start_us,
                                           uint64_t seed)
    : profile_(profile), start_us_(start_us), rng_(seed), noise_(DeriveSeed(seed, 2)) {
  pressure_ = profile.epap_cm_h2o;
  background_leak_ = rng_.Uniform(0.5, 4.0);
  cardio_inc_ = PhaseIncrement(profile.heart_rate_bpm / 60.0, kRateHz);
  StartBreath();
  // Start somewhere inside the first breath.
  tau_ = rng_.Uniform(0, ti_);
}

void VentilationGenerator::StartBreath() {
  const double rate =
      std::max(profile_.backup_rate_bpm, profile_.resp_rate_bpm * (1.0 + 0.08 * rng_.Normal()));
  const double period = 60.0 / rate;
  ti_ = std::clamp(profile_.ti_fraction * period * (1.0 + 0.05 * rng_.Normal()), 0.7, 1.6);
  te_ = std::max(period - ti_, 0.8);
  const double vt_l = std::max(0.1, profile_.tidal_volume_ml * (1.0 + 0.1 * rng_.Normal())) / 1000;
  insp_peak_ = vt_l * kPi / (2 * ti_) * 60.0;  // L/min: half-sine of area Vt
  const double tau_e = profile_.expiratory_tau_s;
  exp_peak_ = vt_l / (tau_e * (1.0 - std::exp(-te_ / tau_e))) * 60.0;
  decay_ = std::exp(-kDt / tau_e);
  exp_factor_ = 1;
  tau_ = 0;
  inspiring_ = true;
}

void VentilationGenerator::Generate(int32_t* flow, int32_t* pressure, int n,
                                    std::vector<TruthEvent>& truth) {
  const double alpha = 1.0 - std::exp(-kDt / 0.1);
  for (int i = 0; i < n; ++i, ++next_sample_) {
    const ops::TimeUs t = SampleTime(next_sample_);
    while (first_plan_ < plans_.size() && plans_[first_plan_].end_us <= t) ++first_plan_;
    const NivPlan* plan = nullptr;
    if (first_plan_ < plans_.size() && plans_[first_plan_].start_us <= t) {
      plan = &plans_[first_plan_];
      if (t - plan->start_us < 40'000) {
        TruthEvent e{plan->kind, plan->start_us, plan->end_us, {}};
        switch (plan->kind) {
          case TruthKind::kApnea:
          case TruthKind::kHypopnea:
            e.params = {{"residual_fraction", plan->level}, {"drop_pct", 100 * (1 - plan->level)}};
            break;
          case TruthKind::kLargeLeak:
            e.params = {{"unintentional_leak_lpm", plan->level}};
            break;
          case TruthKind::kDisconnection:
            e.params = {{"flow_lpm", plan->level}};
            break;
          default:
            break;
        }
        truth.push_back(std::move(e));
      }
    }
    // Weight of the plan's effect: ramps of `ramp_s` inside the interval.
    auto weight = [&](double ramp_s) {
      const double in = ops::ToSeconds(t - plan->start_us);
      const double out = ops::ToSeconds(plan->end_us - t);
      return std::clamp(std::min(in, out) / ramp_s, 0.0, 1.0);
    };

    // Patient flow.
    double patient;
    if (inspiring_) {
      patient = insp_peak_ * std::sin(kPi * tau_ / ti_);
    } else {
      patient = -exp_peak_ * exp_factor_;
      exp_factor_ *= decay_;
    }
    const double target = inspiring_ ? profile_.ipap_cm_h2o : profile_.epap_cm_h2o;
    pressure_ += alpha * (target - pressure_);
    tau_ += kDt;
    if (inspiring_ && tau_ >= ti_) {
      inspiring_ = false;
      tau_ -= ti_;
      exp_factor_ = std::exp(-tau_ / profile_.expiratory_tau_s);
    } else if (!inspiring_ && tau_ >= te_) {
      StartBreath();
    }

    double leak = profile_.intended_leak_lpm + background_leak_;
    double p = pressure_;
    if ((next_sample_ & 127) == 0) {
      background_leak_ = std::clamp(background_leak_ + 0.3 * rng_.Normal(), 0.0, 6.0);
    }
    if (plan != nullptr) {
      switch (plan->kind) {
        case TruthKind::kApnea:
        case TruthKind::kHypopnea:
          patient *= 1.0 - (1.0 - plan->level) * weight(1.0);
          break;
        case TruthKind::kLargeLeak:
          leak += plan->level * weight(2.0);
          break;
        default:
          break;
      }
    }
    cardio_acc_ += cardio_inc_;
    double f = patient + leak + 0.4 * SineOf(cardio_acc_) + 0.3 * noise_.Next();
    p += 0.05 * noise_.Next();
    if (plan != nullptr && plan->kind == TruthKind::kDisconnection) {
      const double w = weight(1.0);
      f = (1 - w) * f + w * (plan->level + 3.0 * noise_.Next());
      p = (1 - w) * p + w * (0.3 + 0.1 * noise_.Next());
    }
    flow[i] = static_cast<int32_t>(std::lround(f / kFlowGainLpm));
    pressure[i] = static_cast<int32_t>(std::lround(p / kPressureGainCmH2o));
  }
}

}  // namespace vigil::sim
