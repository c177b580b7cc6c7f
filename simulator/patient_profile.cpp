#include "simulator/patient_profile.h"

#include <fmt/format.h>

#include <algorithm>

#include "simulator/random.h"

namespace vigil::sim {

PatientProfile DrawProfile(uint64_t cohort_seed, uint32_t index) {
  PatientProfile p;
  p.index = index;
  p.seed = DeriveSeed(cohort_seed, index, 0x50524f46);  // "PROF"
  Rng rng(p.seed);
  p.patient_id = fmt::format("sim-{:05d}", index);
  const uint64_t serial = rng.NextU64();
  p.ecg_device_id = fmt::format("ecgpatch-{:08X}", static_cast<uint32_t>(serial));
  p.niv_device_id = fmt::format("niv-{:08X}", static_cast<uint32_t>(serial >> 32));
  p.co2_device_id = fmt::format("tcco2-{:06X}", static_cast<uint32_t>(rng.NextU64() & 0xFFFFFF));
  p.gateway_id = fmt::format("gw-{:06X}", static_cast<uint32_t>(rng.NextU64() & 0xFFFFFF));

  const double m = rng.Uniform();
  p.monitoring = m < 0.45  ? Monitoring::kCardiac
                 : m < 0.8 ? Monitoring::kVentilation
                           : Monitoring::kBoth;
  const double c = rng.Uniform();
  p.condition = c < 0.6    ? CardiacCondition::kNormalSinus
                : c < 0.75 ? CardiacCondition::kParoxysmalAf
                : c < 0.83 ? CardiacCondition::kSinusNodeDisease
                : c < 0.93 ? CardiacCondition::kVentricularEctopy
                           : CardiacCondition::kTachyEpisodes;
  p.heart_rate_bpm = std::clamp(rng.Normal(70, 9), 52.0, 95.0);
  if (p.condition == CardiacCondition::kSinusNodeDisease) p.heart_rate_bpm = rng.Uniform(50, 62);
  p.r_amplitude_mv = rng.Uniform(0.8, 1.8);
  p.t_amplitude_mv = p.r_amplitude_mv * rng.Uniform(0.15, 0.3);
  p.p_amplitude_mv = rng.Uniform(0.08, 0.2);
  // Noise levels of ambulatory recordings: EMG 5-20 uV SD, mains a few uV after the front
  // end's filtering, baseline wander up to 0.15 mV.
  p.emg_noise_mv = rng.Uniform(0.005, 0.02);
  p.mains_mv = rng.Uniform(0.002, 0.015);
  p.wander_mv = rng.Uniform(0.03, 0.15);

  // Ventilated patients: COPD and obesity hypoventilation; breathing is shallow and fast-ish.
  p.resp_rate_bpm = rng.Uniform(12, 20);
  p.tidal_volume_ml = rng.Uniform(350, 600);
  p.expiratory_tau_s = rng.Uniform(0.45, 0.9);  // COPD: slow passive expiration
  p.ti_fraction = rng.Uniform(0.32, 0.42);
  p.epap_cm_h2o = std::round(rng.Uniform(4, 9));
  p.ipap_cm_h2o = p.epap_cm_h2o + std::round(rng.Uniform(8, 16));
  p.backup_rate_bpm = std::round(rng.Uniform(10, 16));
  const double k = rng.Uniform();
  p.mask = k < 0.55 ? MaskKind::kFullFace : k < 0.85 ? MaskKind::kNasal : MaskKind::kNasalPillows;
  // Vent curves: about 25-30 L/min at 10 cmH2O, a little less for pillows.
  p.vent_k_lpm = p.mask == MaskKind::kNasalPillows ? rng.Uniform(6.5, 7.5) : rng.Uniform(7.8, 9.2);
  const double mean_pressure = p.epap_cm_h2o + (p.ipap_cm_h2o - p.epap_cm_h2o) * p.ti_fraction;
  p.intended_leak_lpm = std::round(10 * p.vent_k_lpm * std::sqrt(mean_pressure)) / 10;

  const double n = rng.Uniform();
  p.co2_night = n < 0.7    ? Co2Night::kNormal
                : n < 0.85 ? Co2Night::kHypoventilation
                           : Co2Night::kNearMiss;
  p.co2_awake_mm_hg = rng.Uniform(36, 47);
  if (p.co2_night == Co2Night::kNearMiss) {
    // Just-under nights need an awake baseline at which "peak 1.2-2 mmHg under the threshold"
    // is not also a >= 10 mmHg rise: threshold = awake + 10 for awake in [40, 45].
    p.co2_awake_mm_hg = rng.Uniform(40, 45);
  }
  const double a = rng.Uniform();
  p.adherence = a < 0.7    ? AdherencePattern::kCompliant
                : a < 0.85 ? AdherencePattern::kDeclining
                           : AdherencePattern::kNonCompliant;
  p.usual_usage_h =
      p.adherence == AdherencePattern::kNonCompliant ? rng.Uniform(2, 4) : rng.Uniform(5.5, 8);
  return p;
}

}  // namespace vigil::sim
