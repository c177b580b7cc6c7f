// Who a simulated patient is: monitored signals, physiology, therapy settings and the condition
// that shapes their events. Drawn from (cohort seed, patient index) alone, so patient 42 is the
// same person whatever the cohort size.
#pragma once

#include <cstdint>
#include <string>

#include "operators/core/time.h"

namespace vigil::sim {

enum class Monitoring : uint8_t { kCardiac, kVentilation, kBoth };

// The cardiac condition that sets which arrhythmias a patient has, and how often.
enum class CardiacCondition : uint8_t {
  kNormalSinus,        // isolated PVCs, artefacts, lead-off only
  kParoxysmalAf,       // AF episodes
  kSinusNodeDisease,   // pauses, bradycardia, rare asystole
  kVentricularEctopy,  // frequent PVCs, VT runs, rare VF
  kTachyEpisodes,      // sinus / supraventricular tachycardia stretches
};

enum class Co2Night : uint8_t { kNormal, kHypoventilation, kNearMiss };
enum class AdherencePattern : uint8_t { kCompliant, kDeclining, kNonCompliant };
enum class MaskKind : uint8_t { kNasal, kNasalPillows, kFullFace };

struct PatientProfile {
  uint32_t index = 0;
  uint64_t seed = 0;          // the patient's own seed (derived from cohort seed and index)
  std::string patient_id;     // "sim-00042"
  std::string ecg_device_id;  // device serials: not patient identifiers
  std::string niv_device_id;
  std::string co2_device_id;
  std::string gateway_id;
  Monitoring monitoring = Monitoring::kBoth;
  bool has_ecg() const { return monitoring != Monitoring::kVentilation; }
  bool has_niv() const { return monitoring != Monitoring::kCardiac; }

  // ECG
  CardiacCondition condition = CardiacCondition::kNormalSinus;
  double heart_rate_bpm = 70;  // resting mean
  double r_amplitude_mv = 1.2;
  double t_amplitude_mv = 0.3;
  double p_amplitude_mv = 0.15;
  double emg_noise_mv = 0.01;  // standard deviation
  double mains_mv = 0.01;      // 50 Hz amplitude
  double wander_mv = 0.1;      // respiration-coupled baseline wander amplitude

  // Respiration (also couples into the ECG: RSA and baseline wander)
  double resp_rate_bpm = 15;
  double tidal_volume_ml = 450;
  double expiratory_tau_s = 0.45;  // COPD: longer
  double ti_fraction = 0.38;       // Ti / breath period

  // NIV settings (bilevel ST)
  double ipap_cm_h2o = 16;
  double epap_cm_h2o = 6;
  double backup_rate_bpm = 12;
  MaskKind mask = MaskKind::kFullFace;
  double vent_k_lpm = 7.5;       // intended leak = k * sqrt(P)
  double intended_leak_lpm = 0;  // at the breath-mean pressure: what SettingsChange reports

  // CO2 (transcutaneous)
  Co2Night co2_night = Co2Night::kNormal;
  double co2_awake_mm_hg = 42;

  // Adherence
  AdherencePattern adherence = AdherencePattern::kCompliant;
  double usual_usage_h = 7;
};

// Draws the profile of patient `index` of the cohort with `cohort_seed`.
PatientProfile DrawProfile(uint64_t cohort_seed, uint32_t index);

}  // namespace vigil::sim
