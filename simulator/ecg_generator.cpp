#include "simulator/ecg_generator.h"

#include <algorithm>
#include <cmath>

#include "simulator/sine_table.h"

namespace vigil::sim {
namespace {

constexpr double kFs = EcgGenerator::kRateHz;
constexpr double kPi = 3.14159265358979323846;
// A beat's rendering starts this many samples before its R peak (P wave onset at the longest
// PR) and ends kPost after it (end of the slowest T wave).
constexpr int kPre = 75;
[[maybe_unused]] constexpr int kPost = 190;  // documents the templates' extent (no code reads it)
constexpr int kMaxBlock = 1024;

// A shape sampled at 250 Hz; `first` is the offset of values[0] from the R peak, in samples.
struct Template {
  int first = 0;
  std::vector<float> values;
};

double Gauss(double t, double centre, double sigma) {
  const double z = (t - centre) / sigma;
  return std::exp(-0.5 * z * z);
}

// Asymmetric Gaussian: T waves rise more slowly than they fall.
double SkewGauss(double t, double centre, double sigma_rise, double sigma_fall) {
  return Gauss(t, centre, t < centre ? sigma_rise : sigma_fall);
}

template <typename F>
Template Render(double from_s, double to_s, F shape) {
  Template out;
  out.first = static_cast<int>(std::lround(from_s * kFs));
  const int last = static_cast<int>(std::lround(to_s * kFs));
  for (int i = out.first; i <= last; ++i) out.values.push_back(static_cast<float>(shape(i / kFs)));
  return out;
}

// Unit-amplitude shapes (R = 1). Wave positions and widths: McSharry 2003 Table 1 converted
// from angle to time at 60 bpm, with the PR and QRS widths of a normal adult ECG.
struct Templates {
  Template qrs, p, pvc;
  std::vector<Template> t_waves;  // per RR bucket
  static constexpr double kRrMin = 0.25, kRrStep = 0.02;
  static constexpr int kBuckets = 88;  // up to 2.01 s

  Templates() {
    qrs = Render(-0.06, 0.06, [](double t) {
      return -0.12 * Gauss(t, -0.026, 0.008) + Gauss(t, 0, 0.0095) - 0.24 * Gauss(t, 0.027, 0.009);
    });
    p = Render(-0.29, -0.06, [](double t) { return Gauss(t, -0.165, 0.024); });
    // Ventricular beat: no P, wide (~150 ms) QRS, T wave opposite to the QRS (discordant).
    pvc = Render(-0.1, 0.62, [](double t) {
      return Gauss(t, 0, 0.028) - 0.55 * Gauss(t, 0.075, 0.03) -
             0.30 * SkewGauss(t, 0.34, 0.075, 0.05);
    });
    for (int b = 0; b < kBuckets; ++b) {
      const double rr = kRrMin + kRrStep * b;
      const double q = std::sqrt(std::min(rr, 1.6));  // QT ~ sqrt(RR) (Bazett), saturating
      t_waves.push_back(Render(
          0.05, 0.75, [q](double x) { return SkewGauss(x, 0.29 * q, 0.065 * q, 0.042 * q); }));
    }
  }
  const Template& TFor(double rr_s) const {
    const int b = static_cast<int>(std::lround((rr_s - kRrMin) / kRrStep));
    return t_waves[static_cast<size_t>(std::clamp(b, 0, kBuckets - 1))];
  }
};

const Templates& Shapes() {
  static const Templates templates;
  return templates;
}

}  // namespace

EcgGenerator::EcgGenerator(const PatientProfile& profile, ops::TimeUs start_us, uint64_t seed)
    : profile_(profile),
      start_us_(start_us),
      rng_(seed),
      effects_rng_(DeriveSeed(seed, 3)),
      noise_(DeriveSeed(seed, 1)),
      effects_noise_(DeriveSeed(seed, 4)) {
  rsa_amp_ = rng_.Uniform(0.02, 0.05);
  mayer_amp_ = rng_.Uniform(0.015, 0.035);
  mayer_phase_ = rng_.Uniform(0, 2 * kPi);
  resp_phase0_ = rng_.Uniform(0, 2 * kPi);
  switch (profile.condition) {
    case CardiacCondition::kVentricularEctopy:
      pvc_per_beat_ = rng_.Uniform(0.01, 0.04);
      break;
    default:
      pvc_per_beat_ = rng_.Uniform(0.0, 0.003);
      break;
  }
  pvc_gain_ = rng_.Uniform(1.3, 2.0);
  resp_inc_ = PhaseIncrement(profile.resp_rate_bpm / 60.0, kFs);
  resp_acc_ = static_cast<uint32_t>(resp_phase0_ / (2 * kPi) * 4294967296.0);
  drift_inc_ = PhaseIncrement(rng_.Uniform(0.02, 0.06), kFs);
  f_inc_ = PhaseIncrement(rng_.Uniform(5.0, 7.5), kFs);
  const double mains_phase = rng_.Uniform(0, 2 * kPi);
  for (int i = 0; i < 5; ++i) {
    mains_[i] = static_cast<float>(profile.mains_mv * std::sin(2 * kPi * i / 5.0 + mains_phase));
  }
  // First beat somewhere in the first RR.
  next_r_ = kPre + rng_.Int(0, static_cast<int64_t>(60.0 / profile.heart_rate_bpm * kFs));
  last_rr_s_ = 60.0 / profile.heart_rate_bpm;
}

int64_t EcgGenerator::ToSample(ops::TimeUs t) const {
  return (t - start_us_ + 2000) / 4000;
}

void EcgGenerator::Schedule(const EcgPlan& plan) {
  if (ToSample(plan.start_us) < next_sample_) return;
  plans_.push_back(plan);
}

ops::TimeUs EcgGenerator::PlanningHorizon(int n) const {
  // Beats are decided up to one RR (at most a pause or asystole, <= 12 s) ahead.
  return SampleTime(next_sample_ + n) + 15 * ops::kMicrosPerSecond;
}

const EcgPlan* EcgGenerator::PlanAt(int64_t sample, TruthKind kind) const {
  for (size_t i = first_plan_; i < plans_.size(); ++i) {
    const auto& p = plans_[i];
    const int64_t s = ToSample(p.start_us);
    if (s > sample) break;
    if (p.kind == kind && sample < ToSample(p.end_us)) return &p;
  }
  return nullptr;
}

double EcgGenerator::SinusRr(int64_t r_sample) {
  double hr = profile_.heart_rate_bpm;
  if (const auto* p = PlanAt(r_sample, TruthKind::kBradycardia)) hr = p->rate_bpm;
  if (const auto* p = PlanAt(r_sample, TruthKind::kTachycardia)) hr = p->rate_bpm;
  const double t = static_cast<double>(r_sample) / kFs;
  const double f_resp = profile_.resp_rate_bpm / 60.0;
  // HRV: RSA (HF) at the breathing frequency, Mayer waves (LF) at 0.1 Hz, AR(1) residue. RSA
  // shortens RR during inspiration.
  ar_ = 0.7 * ar_ + 0.01 * rng_.Normal();
  const double modulation = -rsa_amp_ * std::sin(2 * kPi * f_resp * t + resp_phase0_) +
                            mayer_amp_ * std::sin(2 * kPi * 0.1 * t + mayer_phase_) + ar_;
  // Rate-dependent HRV: fast rates are less variable.
  const double scale = std::clamp(70.0 / hr, 0.3, 1.0);
  return 60.0 / hr * (1.0 + scale * modulation);
}

void EcgGenerator::RenderBeat(int64_t r, BeatKind kind, double rr_s) {
  const auto& shapes = Shapes();
  const double resp = std::sin(
      2 * kPi * profile_.resp_rate_bpm / 60.0 * (static_cast<double>(r) / kFs) + resp_phase0_);
  // Breathing moves the heart's electrical axis: QRS amplitude +-7 %.
  const float gain = static_cast<float>(profile_.r_amplitude_mv * (1.0 + 0.07 * resp));
  auto add = [&](const Template& t, float amplitude) {
    int64_t s = r + t.first;
    for (const float v : t.values) ring_[static_cast<size_t>(s++ & (kRing - 1))] += amplitude * v;
  };
  if (kind == BeatKind::kVentricular) {
    add(shapes.pvc, gain * static_cast<float>(pvc_gain_));
    return;
  }
  if (kind == BeatKind::kSinus) add(shapes.p, static_cast<float>(profile_.p_amplitude_mv));
  add(shapes.qrs, gain);
  add(shapes.TFor(rr_s), static_cast<float>(profile_.t_amplitude_mv));
}

void EcgGenerator::ScheduleBeats(int64_t until, std::vector<TruthEvent>& truth) {
  while (next_r_ - kPre < until) {
    const int64_t r = next_r_;
    // Beats stop during VF (and resume 0.6 s after it: defibrillation or self-termination).
    if (const auto* vf = PlanAt(r, TruthKind::kVentricularFibrillation)) {
      next_r_ = ToSample(vf->end_us) + static_cast<int64_t>(0.6 * kFs);
      last_r_ = -1;
      continue;
    }
    const bool in_af = PlanAt(r, TruthKind::kAtrialFibrillation) != nullptr;
    BeatKind kind = in_af ? BeatKind::kConductedNoP : BeatKind::kSinus;
    if (vt_left_ > 0 || next_is_pvc_) kind = BeatKind::kVentricular;
    RenderBeat(r, kind, last_rr_s_);

    double rr = 0;
    if (next_is_pvc_) {
      next_is_pvc_ = false;
      truth.push_back({TruthKind::kPvc,
                       SampleTime(r) - 60'000,
                       SampleTime(r) + 100'000,
                       {{"coupling_s", last_rr_s_}}});
      rr = after_pvc_rr_;  // compensatory pause: the sinus node was not reset
    } else if (vt_left_ > 0) {
      if (vt_truth_.start_us == 0) vt_truth_.start_us = SampleTime(r) - 60'000;
      if (--vt_left_ == 0) {
        vt_truth_.end_us = SampleTime(r) + 100'000;
        truth.push_back(vt_truth_);
        vt_truth_ = {};
        rr = 1.3 * 60.0 / profile_.heart_rate_bpm;
      } else {
        rr = vt_rr_ * (1.0 + 0.02 * rng_.Normal());
      }
    } else if (in_af) {
      // Irregularly irregular: independent RR draws around the AF ventricular rate.
      const double mean = 60.0 / PlanAt(r, TruthKind::kAtrialFibrillation)->rate_bpm;
      rr = std::clamp(mean * (1.0 + 0.22 * rng_.Normal()), 0.3, 1.9);
    } else {
      rr = SinusRr(r);
    }

    // One-shot plans that begin before the next beat: VT onset, pause, asystole.
    const int64_t candidate = r + static_cast<int64_t>(std::lround(rr * kFs));
    for (size_t i = first_plan_; i < plans_.size() && vt_left_ == 0; ++i) {
      auto& p = plans_[i];
      if (ToSample(p.start_us) > candidate) break;
      if (p.count < 0) continue;  // consumed
      if (p.kind == TruthKind::kVentricularTachycardia) {
        vt_left_ = p.count;
        vt_rr_ = 60.0 / p.rate_bpm;
        vt_truth_ = {TruthKind::kVentricularTachycardia,
                     0,
                     0,
                     {{"beats", p.count}, {"rate_bpm", p.rate_bpm}}};
        rr = vt_rr_;
        p.count = -1;
      } else if (p.kind == TruthKind::kPause || p.kind == TruthKind::kAsystole) {
        rr = ops::ToSeconds(p.end_us - p.start_us);
        truth.push_back(
            {p.kind, SampleTime(r), SampleTime(r) + ops::FromSeconds(rr), {{"rr_s", rr}}});
        p.count = -1;
      }
    }
    // Isolated PVCs replace the next sinus beat, early (coupling 55-70 % of the RR).
    if (vt_left_ == 0 && kind != BeatKind::kVentricular && !in_af && rr < 2.0 &&
        rng_.Chance(pvc_per_beat_)) {
      const double coupling = rr * rng_.Uniform(0.55, 0.7);
      after_pvc_rr_ = 2 * rr - coupling;
      rr = coupling;
      next_is_pvc_ = true;
    }
    last_rr_s_ = rr;
    last_r_ = r;
    next_r_ = r + std::max<int64_t>(1, std::lround(rr * kFs));
  }
}

void EcgGenerator::Generate(int32_t* out, int n, std::vector<SimDeviceEvent>& events,
                            std::vector<TruthEvent>& truth) {
  while (n > 0) {
    const int m = std::min(n, kMaxBlock);
    const int64_t a = next_sample_;
    const int64_t b = a + m;
    ScheduleBeats(b, truth);
    float block[kMaxBlock];
    const float wander = static_cast<float>(profile_.wander_mv);
    const float emg = static_cast<float>(profile_.emg_noise_mv);
    int mains_index = static_cast<int>(a % 5);
    for (int i = 0; i < m; ++i) {
      float& slot = ring_[static_cast<size_t>((a + i) & (kRing - 1))];
      resp_acc_ += resp_inc_;
      drift_acc_ += drift_inc_;
      block[i] = slot + wander * (SineOf(resp_acc_) + 0.5f * SineOf(drift_acc_)) +
                 mains_[mains_index] + emg * noise_.Next();
      slot = 0;
      if (++mains_index == 5) mains_index = 0;
    }
    // Conditions that act on samples rather than beats.
    while (first_plan_ < plans_.size() && ToSample(plans_[first_plan_].end_us) < a - kRing) {
      ++first_plan_;
    }
    for (size_t k = first_plan_; k < plans_.size(); ++k) {
      const auto& p = plans_[k];
      const int64_t ps = ToSample(p.start_us), pe = ToSample(p.end_us);
      if (ps >= b) break;
      if (pe <= a) continue;
      if (ps >= a && p.kind != TruthKind::kVentricularTachycardia && p.kind != TruthKind::kPause &&
          p.kind != TruthKind::kAsystole) {
        TruthEvent t{p.kind, p.start_us, p.end_us, {}};
        if (p.rate_bpm > 0) t.params.push_back({"rate_bpm", p.rate_bpm});
        if (p.level > 0) t.params.push_back({"level_mv", p.level});
        if (p.kind == TruthKind::kAtrialFibrillation) {
          t.params.push_back({"f_wave_hz", f_inc_ / 4294967296.0 * kFs});
        }
        truth.push_back(std::move(t));
      }
      const int i0 = static_cast<int>(std::max(ps, a) - a);
      const int i1 = static_cast<int>(std::min(pe, b) - a);
      switch (p.kind) {
        case TruthKind::kAtrialFibrillation: {
          // f-waves: a 4-9 Hz fibrillatory oscillation wandering +-0.5 Hz, 0.03-0.1 mV.
          const float amp = static_cast<float>(p.level > 0 ? p.level : 0.06);
          for (int i = i0; i < i1; ++i) {
            if (((a + i) & 63) == 0) {
              const double now_hz = f_inc_ / 4294967296.0 * kFs;
              const double hz = std::clamp(now_hz + 0.1 * effects_rng_.Normal(), 4.5, 8.5);
              f_inc_ = PhaseIncrement(hz, kFs);
            }
            f_acc_ += f_inc_;
            block[i] += amp * (SineOf(f_acc_) + 0.3f * SineOf(2 * f_acc_ + 0x40000000u));
          }
          break;
        }
        case TruthKind::kVentricularFibrillation: {
          // Coarse VF: three 4-7 Hz components with drifting frequencies and amplitude.
          const float amp = static_cast<float>(p.level > 0 ? p.level : 0.4);
          for (int i = i0; i < i1; ++i) {
            if (((a + i) & 31) == 0) {
              for (size_t c = 0; c < 3; ++c) {
                const double now = vf_inc_[c] == 0 ? effects_rng_.Uniform(4.0, 7.0)
                                                   : vf_inc_[c] / 4294967296.0 * kFs;
                const double hz = std::clamp(now + 0.25 * effects_rng_.Normal(), 4.0, 7.0);
                vf_inc_[c] = PhaseIncrement(hz, kFs);
              }
              vf_gain_ = std::clamp(vf_gain_ + 0.08 * effects_rng_.Normal(), 0.5, 1.3);
            }
            float v = 0;
            for (size_t c = 0; c < 3; ++c) {
              vf_acc_[c] += vf_inc_[c];
              v += SineOf(vf_acc_[c]);
            }
            block[i] += amp * static_cast<float>(vf_gain_) * 0.6f * v;
          }
          break;
        }
        case TruthKind::kEcgNoise: {
          // Motion artefact: the electrode-skin potential jumps to new levels every ~0.2-0.5 s
          // (first-order approach to each) plus strong EMG.
          const float amp = static_cast<float>(p.level > 0 ? p.level : 1.0);
          for (int i = i0; i < i1; ++i) {
            if (effects_rng_.Chance(1.0 / 80)) {
              motion_target_ = amp * static_cast<float>(effects_rng_.Normal());
            }
            motion_ += 0.08f * (motion_target_ - motion_);
            block[i] += motion_ + 0.15f * amp * effects_noise_.Next();
          }
          break;
        }
        case TruthKind::kEcgLeadOff:
          if (ps >= a) {
            events.push_back({SimDevice::kEcg, SimDeviceEvent::Type::kLeadOff, p.start_us});
          }
          if (pe <= b) {
            events.push_back({SimDevice::kEcg, SimDeviceEvent::Type::kLeadOk, p.end_us});
          }
          // The open input floats to the positive rail.
          for (int i = i0; i < i1; ++i) block[i] = static_cast<float>(kAdcMax * kGainMv) + 1.0f;
          break;
        default:
          break;
      }
    }
    constexpr float kInvGain = static_cast<float>(1.0 / kGainMv);
    for (int i = 0; i < m; ++i) {
      const float c = std::nearbyint(block[i] * kInvGain);
      out[i] = static_cast<int32_t>(
          std::clamp(c, static_cast<float>(kAdcMin), static_cast<float>(kAdcMax)));
    }
    next_sample_ = b;
    out += m;
    n -= m;
  }
}

}  // namespace vigil::sim
