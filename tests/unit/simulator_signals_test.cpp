// The simulator's ground truth matches its signals: each injected condition is measured back
// from the generated samples with simple, independent signal measurements (an R-peak picker,
// breath amplitude envelopes, means, run lengths against the clinical rules).
#include <date/tz.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "simulator/co2_generator.h"
#include "simulator/patient_simulator.h"

namespace {

using namespace vigil::sim;
using vigil::ops::FromSeconds;
using vigil::ops::TimeUs;

constexpr TimeUs kStart = SimulationOptions{}.start_us;
TimeUs At(double s) {
  return kStart + FromSeconds(s);
}
double Sec(TimeUs t) {
  return vigil::ops::ToSeconds(t - kStart);
}

PatientProfile CardiacProfile() {
  auto p = DrawProfile(11, 3);
  p.monitoring = Monitoring::kCardiac;
  p.condition = CardiacCondition::kNormalSinus;
  p.heart_rate_bpm = 70;
  p.r_amplitude_mv = 1.2;
  p.t_amplitude_mv = 0.3;
  p.p_amplitude_mv = 0.15;
  return p;
}

struct Ecg {
  std::vector<int32_t> counts;
  std::vector<double> mv;
  std::vector<TruthEvent> truth;
  std::vector<SimDeviceEvent> events;
};

Ecg RunEcg(const PatientProfile& profile, std::vector<EcgPlan> plans, int seconds) {
  SimulationOptions o;
  o.end_us = o.start_us + FromSeconds(seconds);
  PatientSimulator simulator(profile, o);
  simulator.ForceEcgPlans(std::move(plans));
  Ecg out;
  PatientBlock block;
  for (int s = 0; s < seconds; ++s) {
    simulator.Next(1, block);
    out.counts.insert(out.counts.end(), block.ecg.begin(), block.ecg.end());
    out.events.insert(out.events.end(), block.events.begin(), block.events.end());
    out.truth.insert(out.truth.end(), block.truth.begin(), block.truth.end());
  }
  for (const int32_t c : out.counts) out.mv.push_back(c * EcgGenerator::kGainMv);
  return out;
}

// Baseline removed: x minus its centred 0.25 s moving average.
std::vector<double> HighPass(const std::vector<double>& x) {
  const int half = 31;
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t a = i >= half ? i - half : 0;
    const size_t b = std::min(x.size(), i + half + 1);
    const double sum =
        std::accumulate(x.begin() + static_cast<long>(a), x.begin() + static_cast<long>(b), 0.0);
    const double mean = sum / static_cast<double>(b - a);
    y[i] = x[i] - mean;
  }
  return y;
}

// R peaks: maxima of the high-passed ECG above `threshold` mV, 200 ms refractory. Seconds.
std::vector<double> RPeaks(const std::vector<double>& y, double threshold) {
  std::vector<double> peaks;
  size_t i = 0;
  while (i < y.size()) {
    if (y[i] > threshold) {
      size_t best = i;
      for (size_t k = i; k < std::min(y.size(), i + 30); ++k) {
        if (y[k] > y[best]) best = k;
      }
      peaks.push_back(static_cast<double>(best) / 250.0);
      i = best + 50;
    } else {
      ++i;
    }
  }
  return peaks;
}

std::vector<double> RrIn(const std::vector<double>& peaks, double from, double to) {
  std::vector<double> rr;
  for (size_t k = 1; k < peaks.size(); ++k) {
    if (peaks[k - 1] >= from && peaks[k] <= to) rr.push_back(peaks[k] - peaks[k - 1]);
  }
  return rr;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Median |delta RR| / median RR: ~0.03 in sinus rhythm, ~0.2 in AF.
double Irregularity(const std::vector<double>& rr) {
  std::vector<double> d;
  for (size_t k = 1; k < rr.size(); ++k) d.push_back(std::abs(rr[k] - rr[k - 1]));
  return Median(d) / Median(rr);
}

// Ensemble-averaged P-wave height: mean over beats (preceded by RR > 0.6 s) of the max in
// [-0.22, -0.11] s before R minus the value at -0.30 s.
// `beats` receives how many beats were averaged.
double MeanPWave(const std::vector<double>& x, const std::vector<double>& peaks, double from,
                 double to, int& beats) {
  std::vector<double> average(60, 0.0);  // samples -0.30 .. -0.06 s
  int n = 0;
  for (size_t k = 1; k < peaks.size(); ++k) {
    if (peaks[k] < from || peaks[k] > to || peaks[k] - peaks[k - 1] < 0.6) continue;
    const long r = std::lround(peaks[k] * 250);
    for (long j = 0; j < 60; ++j) {
      average[static_cast<size_t>(j)] += x[static_cast<size_t>(r - 75 + j)];
    }
    ++n;
  }
  beats = n;
  if (n == 0) return 0;
  for (auto& v : average) v /= n;
  const double base = average[0];
  double peak = -1e9;
  for (size_t j = 20; j < 48; ++j) peak = std::max(peak, average[j] - base);
  return peak;
}

const TruthEvent* FindTruth(const std::vector<TruthEvent>& truth, TruthKind kind) {
  for (const auto& t : truth) {
    if (t.kind == kind) return &t;
  }
  return nullptr;
}

TEST(SimulatedEcg, AtrialFibrillationIsIrregularWithoutPWaves) {
  const auto ecg = RunEcg(CardiacProfile(),
                          {{TruthKind::kAtrialFibrillation, At(100), At(220), 95, 0, 0.06}}, 300);
  const auto* af = FindTruth(ecg.truth, TruthKind::kAtrialFibrillation);
  ASSERT_NE(af, nullptr);
  EXPECT_EQ(af->start_us, At(100));
  EXPECT_EQ(af->end_us, At(220));
  const auto peaks = RPeaks(HighPass(ecg.mv), 0.6);
  const auto sinus = RrIn(peaks, 20, 95);
  const auto fib = RrIn(peaks, 105, 215);
  ASSERT_GT(sinus.size(), 60u);
  ASSERT_GT(fib.size(), 140u);
  EXPECT_LT(Irregularity(sinus), 0.08);
  EXPECT_GT(Irregularity(fib), 0.12);
  EXPECT_NEAR(60 / Median(fib), 95, 12);
  int sinus_beats = 0, af_beats = 0;
  EXPECT_GT(MeanPWave(ecg.mv, peaks, 20, 95, sinus_beats), 0.08);
  EXPECT_LT(MeanPWave(ecg.mv, peaks, 105, 215, af_beats), 0.04);
  EXPECT_GT(sinus_beats, 50);
  EXPECT_GT(af_beats, 50);
}

TEST(SimulatedEcg, PauseHasNoBeatForItsDuration) {
  const auto ecg = RunEcg(CardiacProfile(), {{TruthKind::kPause, At(60), At(63.5), 0, 0, 0}}, 90);
  const auto* pause = FindTruth(ecg.truth, TruthKind::kPause);
  ASSERT_NE(pause, nullptr);
  EXPECT_NEAR(pause->Param("rr_s"), 3.5, 1e-9);
  const auto peaks = RPeaks(HighPass(ecg.mv), 0.6);
  int long_rr = 0;
  for (size_t k = 1; k < peaks.size(); ++k) {
    const double rr = peaks[k] - peaks[k - 1];
    if (rr > 2.0) {
      ++long_rr;
      EXPECT_GT(rr, 3.0);
      EXPECT_NEAR(peaks[k - 1], Sec(pause->start_us), 0.02);
      EXPECT_NEAR(peaks[k], Sec(pause->end_us), 0.02);
    }
  }
  EXPECT_EQ(long_rr, 1);
}

TEST(SimulatedEcg, AsystoleHasNoQrsForFourSecondsOrMore) {
  const auto ecg = RunEcg(CardiacProfile(), {{TruthKind::kAsystole, At(50), At(56), 0, 0, 0}}, 80);
  const auto* asys = FindTruth(ecg.truth, TruthKind::kAsystole);
  ASSERT_NE(asys, nullptr);
  const auto peaks = RPeaks(HighPass(ecg.mv), 0.6);
  for (const double p : peaks) {
    EXPECT_FALSE(p > Sec(asys->start_us) + 0.05 && p < Sec(asys->end_us) - 0.05) << p;
  }
  EXPECT_GE(Sec(asys->end_us) - Sec(asys->start_us), 4.0);
}

TEST(SimulatedEcg, VentricularRunIsFastAndWide) {
  const auto ecg = RunEcg(CardiacProfile(),
                          {{TruthKind::kVentricularTachycardia, At(60), At(63.2), 150, 8, 0}}, 90);
  const auto* vt = FindTruth(ecg.truth, TruthKind::kVentricularTachycardia);
  ASSERT_NE(vt, nullptr);
  const auto y = HighPass(ecg.mv);
  const auto peaks = RPeaks(y, 0.6);
  std::vector<double> inside;
  for (const double p : peaks) {
    if (p >= Sec(vt->start_us) && p <= Sec(vt->end_us)) inside.push_back(p);
  }
  ASSERT_EQ(inside.size(), 8u);
  const double mean_rr = (inside.back() - inside.front()) / 7;
  EXPECT_NEAR(60 / mean_rr, 150, 8);
  // Width at half height of the main deflection, in samples.
  auto width = [&](double t) {
    const long r = std::lround(t * 250);
    const double half = y[static_cast<size_t>(r)] / 2;
    long a = r, b = r;
    while (y[static_cast<size_t>(a - 1)] > half) --a;
    while (y[static_cast<size_t>(b + 1)] > half) ++b;
    return static_cast<double>(b - a + 1) * 4;  // ms
  };
  std::vector<double> v_widths, n_widths;
  for (const double p : inside) v_widths.push_back(width(p));
  for (const double p : peaks) {
    if (p > 10 && p < 50) n_widths.push_back(width(p));
  }
  EXPECT_GT(Median(v_widths), 2 * Median(n_widths));
  EXPECT_GT(Median(v_widths), 40);
}

TEST(SimulatedEcg, BradycardiaAndTachycardiaHoldTheirRate) {
  const auto ecg = RunEcg(CardiacProfile(),
                          {{TruthKind::kBradycardia, At(40), At(120), 35, 0, 0},
                           {TruthKind::kTachycardia, At(160), At(220), 160, 0, 0}},
                          240);
  const auto peaks = RPeaks(HighPass(ecg.mv), 0.6);
  EXPECT_NEAR(60 / Median(RrIn(peaks, 45, 120)), 35, 2);
  EXPECT_NEAR(60 / Median(RrIn(peaks, 165, 220)), 160, 8);
  EXPECT_NEAR(60 / Median(RrIn(peaks, 5, 38)), 70, 6);
}

TEST(SimulatedEcg, VentricularFibrillationIsChaoticFourToSevenHertzWithoutBeats) {
  const auto ecg = RunEcg(CardiacProfile(),
                          {{TruthKind::kVentricularFibrillation, At(40), At(50), 0, 0, 0.4}}, 60);
  ASSERT_NE(FindTruth(ecg.truth, TruthKind::kVentricularFibrillation), nullptr);
  const auto y = HighPass(ecg.mv);
  int crossings = 0;
  double lo = 1e9, hi = -1e9;
  for (size_t i = 41 * 250; i < 49 * 250; ++i) {
    if ((y[i - 1] < 0) != (y[i] < 0)) ++crossings;
    lo = std::min(lo, y[i]);
    hi = std::max(hi, y[i]);
  }
  const double hz = crossings / 2.0 / 8.0;
  EXPECT_GE(hz, 3.5);
  EXPECT_LE(hz, 7.5);
  EXPECT_GT(hi - lo, 0.3);
}

TEST(SimulatedEcg, LeadOffIsFlatAtTheRailWithDeviceEvents) {
  const auto ecg =
      RunEcg(CardiacProfile(), {{TruthKind::kEcgLeadOff, At(30), At(45), 0, 0, 0}}, 60);
  for (size_t i = 30 * 250; i < 45 * 250; ++i) ASSERT_EQ(ecg.counts[i], EcgGenerator::kAdcMax) << i;
  EXPECT_NE(ecg.counts[29 * 250], EcgGenerator::kAdcMax);
  EXPECT_NE(ecg.counts[46 * 250], EcgGenerator::kAdcMax);
  ASSERT_EQ(ecg.events.size(), 2u);
  EXPECT_EQ(ecg.events[0].type, SimDeviceEvent::Type::kLeadOff);
  EXPECT_EQ(ecg.events[0].time_us, At(30));
  EXPECT_EQ(ecg.events[1].type, SimDeviceEvent::Type::kLeadOk);
  EXPECT_EQ(ecg.events[1].time_us, At(45));
}

TEST(SimulatedEcg, NoiseBurstRaisesTheNoiseFloor) {
  const auto ecg =
      RunEcg(CardiacProfile(), {{TruthKind::kEcgNoise, At(30), At(40), 0, 0, 1.0}}, 60);
  // Sample-to-sample differences measure high-frequency content without beat structure.
  auto rough = [&](size_t a, size_t b) {
    std::vector<double> d;
    for (size_t i = a + 1; i < b; ++i) d.push_back(std::abs(ecg.mv[i] - ecg.mv[i - 1]));
    return Median(d);
  };
  EXPECT_GT(rough(30 * 250, 40 * 250), 4 * rough(5 * 250, 28 * 250));
}

struct Niv {
  std::vector<double> flow, pressure;
  std::vector<TruthEvent> truth;
};

Niv RunNiv(std::vector<NivPlan> plans, int seconds) {
  auto p = DrawProfile(11, 8);
  p.monitoring = Monitoring::kVentilation;
  p.adherence = AdherencePattern::kCompliant;
  p.usual_usage_h = 7;
  p.tidal_volume_ml = 450;
  p.expiratory_tau_s = 0.6;
  SimulationOptions o;
  o.end_us = o.start_us + FromSeconds(seconds);
  PatientSimulator simulator(p, o);
  simulator.ForceNivPlans(std::move(plans));
  Niv out;
  PatientBlock block;
  for (int s = 0; s < seconds; ++s) {
    simulator.Next(1, block);
    for (auto f : block.flow) out.flow.push_back(f * VentilationGenerator::kFlowGainLpm);
    for (auto q : block.pressure) {
      out.pressure.push_back(q * VentilationGenerator::kPressureGainCmH2o);
    }
    out.truth.insert(out.truth.end(), block.truth.begin(), block.truth.end());
  }
  return out;
}

// Peak-to-peak flow in [from, to) seconds.
double Amplitude(const std::vector<double>& flow, double from, double to) {
  const auto a = flow.begin() + std::lround(from * 25), b = flow.begin() + std::lround(to * 25);
  return *std::max_element(a, b) - *std::min_element(a, b);
}
double Mean(const std::vector<double>& x, double from, double to) {
  const auto a = x.begin() + std::lround(from * 25), b = x.begin() + std::lround(to * 25);
  return std::accumulate(a, b, 0.0) / static_cast<double>(b - a);
}
// Median peak-to-peak of 10 s windows in [from, to): the pre-event baseline amplitude.
double BaselineAmplitude(const std::vector<double>& flow, double from, double to) {
  std::vector<double> v;
  for (double t = from; t + 10 <= to; t += 5) v.push_back(Amplitude(flow, t, t + 10));
  return Median(v);
}

TEST(SimulatedVentilation, ApneaAndHypopneaDropFlowAmplitude) {
  const auto niv = RunNiv(
      {{TruthKind::kApnea, At(300), At(322), 0.03}, {TruthKind::kHypopnea, At(450), At(478), 0.42}},
      520);
  ASSERT_NE(FindTruth(niv.truth, TruthKind::kApnea), nullptr);
  ASSERT_NE(FindTruth(niv.truth, TruthKind::kHypopnea), nullptr);
  const double before_apnea = BaselineAmplitude(niv.flow, 180, 298);
  const double apnea = Amplitude(niv.flow, 301, 321);
  EXPECT_LE(apnea, 0.10 * before_apnea) << apnea << " vs " << before_apnea;
  const double before_hypopnea = BaselineAmplitude(niv.flow, 340, 448);
  const double hypopnea = Amplitude(niv.flow, 451, 477);
  EXPECT_LE(hypopnea, 0.5 * before_hypopnea);
  EXPECT_GE(hypopnea, 0.3 * before_hypopnea);
  // And breathing is back afterwards.
  EXPECT_GT(Amplitude(niv.flow, 330, 340), 0.7 * before_apnea);
}

TEST(SimulatedVentilation, LargeLeakRaisesTheFlowOffsetAndDisconnectionDropsPressure) {
  const auto niv = RunNiv({{TruthKind::kLargeLeak, At(200), At(320), 40},
                           {TruthKind::kDisconnection, At(400), At(460), 170}},
                          500);
  const double offset_before = Mean(niv.flow, 100, 196);
  const double offset_during = Mean(niv.flow, 206, 314);
  EXPECT_NEAR(offset_during - offset_before, 40, 4);
  EXPECT_GT(offset_during - offset_before, 24);
  EXPECT_LT(Mean(niv.pressure, 402, 458), 1.0);
  EXPECT_GT(Mean(niv.flow, 402, 458), 150);
  EXPECT_GT(Mean(niv.pressure, 100, 196), 4.0);
}

TEST(SimulatedVentilation, BreathsMatchTheProfileTidalVolume) {
  const auto niv = RunNiv({}, 300);
  // Inspired volume per minute above the flow offset, in mL, divided by breaths (upward
  // crossings of the offset).
  const double offset = Mean(niv.flow, 60, 300);
  double inspired_ml = 0;
  int breaths = 0;
  for (size_t i = 60 * 25 + 1; i < niv.flow.size(); ++i) {
    const double f = niv.flow[i] - offset;
    if (f > 0) inspired_ml += f / 60.0 * 1000 / 25;
    if (niv.flow[i - 1] - offset <= 3 && f > 3) ++breaths;
  }
  ASSERT_GT(breaths, 20);
  EXPECT_NEAR(inspired_ml / breaths, 450, 80);
}

// Longest run (seconds) of tcCO2 meeting the sleep-hypoventilation condition, with the awake
// baseline estimated from the first 5 minutes of the signal.
double LongestHypoventilationRun(const std::vector<double>& co2) {
  const double awake = std::accumulate(co2.begin(), co2.begin() + 300, 0.0) / 300;
  double longest = 0, run = 0;
  for (const double v : co2) {
    run = (v > 55 || (v >= awake + 10 && v > 50)) ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return longest;
}

std::vector<double> RunCo2(Co2Night night, uint64_t seed, std::vector<TruthEvent>& truth) {
  auto p = DrawProfile(seed, 1);
  p.co2_night = night;
  if (night == Co2Night::kNearMiss) p.co2_awake_mm_hg = Rng(seed).Uniform(40, 45);
  Rng rng(seed);
  const auto plan = PlanCo2Night(p, 8 * 3600, rng, kStart, truth);
  Co2Generator generator(plan, seed);
  std::vector<int32_t> counts(8 * 3600);
  generator.Generate(counts.data(), static_cast<int>(counts.size()));
  std::vector<double> mmhg;
  for (auto c : counts) mmhg.push_back(c * Co2Generator::kGainMmHg);
  return mmhg;
}

TEST(SimulatedCo2, HypoventilationNightsMeetTheRuleAndNearMissesDoNot) {
  int short_near_misses = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    std::vector<TruthEvent> truth;
    const auto hypo = RunCo2(Co2Night::kHypoventilation, seed, truth);
    ASSERT_EQ(truth.size(), 1u);
    EXPECT_EQ(truth[0].kind, TruthKind::kHypoventilation);
    const double run = LongestHypoventilationRun(hypo);
    EXPECT_GE(run, 600) << "seed " << seed;
    EXPECT_NEAR(run, Sec(truth[0].end_us) - Sec(truth[0].start_us), 120) << "seed " << seed;

    truth.clear();
    const auto near = RunCo2(Co2Night::kNearMiss, seed, truth);
    ASSERT_EQ(truth.size(), 1u);
    EXPECT_EQ(truth[0].kind, TruthKind::kHypoventilationNearMiss);
    EXPECT_LT(LongestHypoventilationRun(near), 600) << "seed " << seed;
    if (truth[0].Param("minutes_above_threshold") > 0) ++short_near_misses;
    EXPECT_GT(*std::max_element(near.begin(), near.end()), 49) << "seed " << seed;

    truth.clear();
    const auto normal = RunCo2(Co2Night::kNormal, seed, truth);
    EXPECT_TRUE(truth.empty());
    EXPECT_LT(LongestHypoventilationRun(normal), 600);
  }
  EXPECT_GT(short_near_misses, 0);  // both kinds of near miss occur
  EXPECT_LT(short_near_misses, 12);
}

// Therapy day (noon to noon, Europe/Copenhagen) of `t`, as days since the epoch.
int TherapyDay(TimeUs t) {
  static const auto* zone = date::locate_zone("Europe/Copenhagen");
  const auto local =
      zone->to_local(date::sys_time<std::chrono::microseconds>{std::chrono::microseconds{t}});
  return static_cast<int>(
      date::floor<date::days>(local - std::chrono::hours{12}).time_since_epoch().count());
}

// Usage per therapy day, recomputed from the sessions.
std::map<int, double> UsageByDay(const std::vector<Session>& sessions) {
  std::map<int, double> usage;
  for (const auto& s : sessions) {
    EXPECT_EQ(TherapyDay(s.start_us), TherapyDay(s.end_us)) << "a session crosses local noon";
    usage[TherapyDay(s.start_us)] += vigil::ops::ToSeconds(s.end_us - s.start_us) / 3600;
  }
  return usage;
}

TEST(SimulatedAdherence, DeclineTruthFollowsTheRuleOnTheSessions) {
  int declines = 0, compliant_without_decline = 0;
  for (uint32_t i = 0; i < 20; ++i) {
    for (auto pattern : {AdherencePattern::kCompliant, AdherencePattern::kDeclining}) {
      auto p = DrawProfile(21, i);
      p.monitoring = Monitoring::kVentilation;
      p.adherence = pattern;
      p.usual_usage_h = 7;
      std::vector<TruthEvent> truth;
      Rng rng(i + 1);
      const auto h = BuildAdherenceHistory(p, kStart, rng, truth);
      const auto usage = UsageByDay(h.sessions);
      const int last_day = TherapyDay(kStart) - 1;
      EXPECT_GE(usage.begin()->first, last_day - 29);
      EXPECT_LE(std::prev(usage.end())->first, last_day);
      double sum30 = 0, sum7 = 0;
      for (const auto& [day, hours] : usage) {
        sum30 += hours;
        if (day > last_day - 7) sum7 += hours;
      }
      // Nights without a session count as 0 h; the last history night is the day before today.
      const double mean30 = sum30 / 30, mean7 = sum7 / 7;
      const bool rule = mean7 < 4 || mean7 <= mean30 - 1.5;
      const auto* decline = FindTruth(truth, TruthKind::kAdherenceDecline);
      EXPECT_EQ(decline != nullptr, rule) << i;
      if (decline != nullptr) {
        ++declines;
        EXPECT_NEAR(decline->Param("mean7_h"), mean7, 1e-6);
        EXPECT_NEAR(decline->Param("mean30_h"), mean30, 1e-6);
      }
      if (pattern == AdherencePattern::kDeclining) {
        EXPECT_TRUE(rule) << i;
      }
      if (pattern == AdherencePattern::kCompliant && !rule) ++compliant_without_decline;
    }
  }
  EXPECT_GE(declines, 20);
  EXPECT_GE(compliant_without_decline, 18);
}

}  // namespace
