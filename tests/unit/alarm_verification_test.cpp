// Several signals, one decision (ecg_monitor.h): another ECG lead or a pulsatile signal holds
// back the primary lead's asystole when it shows beats or regular pulses, and supports it when
// it shows none; the pulse detector (pulse_detector.h) on constructed waveforms.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "operators/ecg/ecg_monitor.h"
#include "operators/ecg/pulse_detector.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/analysis/patient_analysis.h"

namespace {

using namespace vigil;
constexpr double kFs = 250;
constexpr double kSeconds = 60;

double Gauss(double t, double centre, double sigma) {
  const double z = (t - centre) / sigma;
  return std::exp(-0.5 * z * z);
}

// Beats every 0.8 s, none in [silent_from, silent_to).
std::vector<double> BeatTimes(double silent_from = 1e9, double silent_to = 1e9) {
  std::vector<double> beats;
  for (double t = 0.6; t < kSeconds - 0.6; t += 0.8) {
    if (t < silent_from || t >= silent_to) beats.push_back(t);
  }
  return beats;
}

// ECG (mV): narrow QRS on a slow baseline wave with a little noise; never flat.
std::vector<float> Ecg(const std::vector<double>& beats, unsigned seed, double fs = kFs) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 0.004);
  std::vector<float> x(static_cast<size_t>(kSeconds * fs));
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / fs;
    double v = 0.05 * std::sin(2 * std::numbers::pi * 0.3 * t) + noise(rng);
    for (const double b : beats) {
      if (std::fabs(t - b) < 0.4) v += 1.2 * Gauss(t, b, 0.012) + 0.25 * Gauss(t, b + 0.25, 0.05);
    }
    x[i] = static_cast<float>(v);
  }
  return x;
}

// Plethysmogram in device units: a pulse 0.25 s after each beat (0 beats: a flat line with
// noise).
std::vector<float> Pleth(const std::vector<double>& beats, double scale = 1000) {
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 0.005);
  std::vector<float> x(static_cast<size_t>(kSeconds * kFs));
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / kFs;
    double v = 2 + noise(rng);
    for (const double b : beats) {
      if (t > b && t < b + 1.2) v += Gauss(t, b + 0.45, 0.12);
    }
    x[i] = static_cast<float>(scale * v);
  }
  return x;
}

struct Channel {
  ops::Signal signal;
  int lead;
  std::vector<float> x;
};

// One-second chunks, channel after channel within each second (as a device's envelope
// carries them); the primary lead first.
ops::Events Analyse(const std::vector<Channel>& channels, const ops::Parameters& parameters = {}) {
  const auto op = analysis::FindOperator("ecg.arrhythmia")->make(parameters, {});
  auto state = op->MakeState();
  ops::Events events;
  const size_t chunk = static_cast<size_t>(kFs);
  for (size_t i = 0; i + chunk <= channels[0].x.size(); i += chunk) {
    for (const auto& c : channels) {
      const ops::Chunk part{ops::SampleTime(0, kFs, static_cast<int64_t>(i)), kFs,
                            std::span<const float>(c.x).subspan(i, chunk), c.lead};
      op->Process(*state, c.signal, part, events);
    }
  }
  op->Finish(*state, events);
  return events;
}

std::vector<ops::Episode> Opened(const ops::Events& events, ops::EpisodeKind kind) {
  std::vector<ops::Episode> out;
  for (const auto& e : events) {
    const auto* p = std::get_if<ops::Episode>(&e);
    if (p && p->kind == kind && p->phase == ops::Episode::Phase::kOpened) out.push_back(*p);
  }
  return out;
}

double Measure(const ops::Episode& e, const std::string& name) {
  for (const auto& m : e.why.measures) {
    if (m.name == name) return m.value;
  }
  return -1;
}

const std::vector<double> kAsystoleBeats = BeatTimes(30, 38);

TEST(AlarmVerification, SingleLeadAsystoleIsRaised) {
  const auto events = Analyse({{ops::Signal::kEcg, 2, Ecg(kAsystoleBeats, 1)}});
  ASSERT_EQ(Opened(events, ops::EpisodeKind::kAsystole).size(), 1u);
}

TEST(AlarmVerification, AnotherLeadWithQrsComplexesHoldsAsystoleBack) {
  const std::vector<Channel> leads = {{ops::Signal::kEcg, 2, Ecg(kAsystoleBeats, 1)},
                                      {ops::Signal::kEcg, 7, Ecg(BeatTimes(), 2)}};
  EXPECT_TRUE(Opened(Analyse(leads), ops::EpisodeKind::kAsystole).empty());
  // The check is the option's: off, the primary lead decides alone.
  EXPECT_EQ(Opened(Analyse(leads, {{"verify_alarms", 0}}), ops::EpisodeKind::kAsystole).size(), 1u);
  // A second lead that is silent too supports the alarm.
  const auto both = Analyse({{ops::Signal::kEcg, 2, Ecg(kAsystoleBeats, 1)},
                             {ops::Signal::kEcg, 7, Ecg(kAsystoleBeats, 2)}});
  const auto asystole = Opened(both, ops::EpisodeKind::kAsystole);
  ASSERT_EQ(asystole.size(), 1u);
  EXPECT_EQ(Measure(asystole[0], "lead_7_beats"), 0);
}

TEST(AlarmVerification, RegularPulseHoldsAsystoleBackAndNoPulseSupportsIt) {
  const auto with_pulse = Analyse({{ops::Signal::kEcg, 2, Ecg(kAsystoleBeats, 1)},
                                   {ops::Signal::kPlethysmogram, 0, Pleth(BeatTimes())}});
  EXPECT_TRUE(Opened(with_pulse, ops::EpisodeKind::kAsystole).empty());
  const auto no_pulse = Analyse({{ops::Signal::kEcg, 2, Ecg(kAsystoleBeats, 1)},
                                 {ops::Signal::kPlethysmogram, 0, Pleth(kAsystoleBeats)}});
  const auto asystole = Opened(no_pulse, ops::EpisodeKind::kAsystole);
  ASSERT_EQ(asystole.size(), 1u);
  EXPECT_EQ(Measure(asystole[0], "pleth_pulse_regular"), 0);
  const double pulses = Measure(asystole[0], "pleth_pulses");
  EXPECT_GE(pulses, 0) << "the evidence names the pulse";
  EXPECT_LE(pulses, 1);
}

// Ventricular fibrillation from 30 s to 45 s: a 5 Hz oscillation of about 1 mV (its
// amplitude wandering), no QRS complexes.
std::vector<float> Fibrillation(const std::vector<float>& ecg) {
  auto x = ecg;
  for (size_t i = static_cast<size_t>(30 * kFs); i < static_cast<size_t>(45 * kFs); ++i) {
    const double t = static_cast<double>(i) / kFs;
    x[i] = static_cast<float>(0.5 * (1 + 0.3 * std::sin(2 * std::numbers::pi * 0.4 * t)) *
                              std::sin(2 * std::numbers::pi * (5 + 0.5 * std::sin(t)) * t));
  }
  return x;
}

size_t Ventricular(const ops::Events& events) {
  return Opened(events, ops::EpisodeKind::kVentricularFibrillation).size() +
         Opened(events, ops::EpisodeKind::kVentricularFlutter).size();
}

TEST(AlarmVerification, AnotherLeadBeatingRegularlyHoldsVfBack) {
  const auto vf = Fibrillation(Ecg(kAsystoleBeats, 1));
  ASSERT_GE(Ventricular(Analyse({{ops::Signal::kEcg, 2, vf}})), 1u) << "VF on one lead alone";
  EXPECT_EQ(Ventricular(
                Analyse({{ops::Signal::kEcg, 2, vf}, {ops::Signal::kEcg, 7, Ecg(BeatTimes(), 2)}})),
            0u);
  // Both leads fibrillating: raised, with the other lead's count in the evidence.
  const auto both = Analyse(
      {{ops::Signal::kEcg, 2, vf}, {ops::Signal::kEcg, 7, Fibrillation(Ecg(kAsystoleBeats, 2))}});
  EXPECT_GE(Ventricular(both), 1u);
  // Every phase that goes out belongs to an opening that went out.
  int open = 0;
  for (const auto& e : both) {
    const auto* p = std::get_if<ops::Episode>(&e);
    if (p == nullptr || (p->kind != ops::EpisodeKind::kVentricularFibrillation &&
                         p->kind != ops::EpisodeKind::kVentricularFlutter)) {
      continue;
    }
    if (p->phase == ops::Episode::Phase::kOpened) ++open;
    if (p->phase == ops::Episode::Phase::kClosed) {
      EXPECT_GT(open--, 0) << "a close without opening";
    }
  }
}

TEST(AlarmVerification, SnapshotWithOtherLeadsAndPulsesContinuesExactly) {
  const auto op = analysis::FindOperator("ecg.arrhythmia")->make({}, {});
  const std::vector<Channel> channels = {{ops::Signal::kEcg, 2, Ecg(kAsystoleBeats, 1)},
                                         {ops::Signal::kEcg, 7, Ecg(kAsystoleBeats, 2)},
                                         {ops::Signal::kPlethysmogram, 0, Pleth(kAsystoleBeats)}};
  auto run = [&](bool restore_midway) {
    auto state = op->MakeState();
    ops::Events events;
    const size_t chunk = static_cast<size_t>(kFs);
    for (size_t i = 0; i + chunk <= channels[0].x.size(); i += chunk) {
      if (restore_midway && i == static_cast<size_t>(33 * kFs)) {  // inside the asystole
        const auto bytes = state->Snapshot();
        state = op->MakeState();
        state->Restore(bytes);
      }
      for (const auto& c : channels) {
        op->Process(*state, c.signal,
                    {ops::SampleTime(0, kFs, static_cast<int64_t>(i)), kFs,
                     std::span<const float>(c.x).subspan(i, chunk), c.lead},
                    events);
      }
    }
    op->Finish(*state, events);
    std::vector<std::pair<int, ops::TimeUs>> episodes;
    for (const auto& e : events) {
      if (const auto* p = std::get_if<ops::Episode>(&e)) {
        episodes.emplace_back(static_cast<int>(p->kind) * 4 + static_cast<int>(p->phase),
                              p->start_us);
      }
    }
    return episodes;
  };
  const auto straight = run(false);
  EXPECT_FALSE(straight.empty());
  EXPECT_EQ(run(true), straight);
}

ecg::PulseDetector::State Detect(const std::vector<float>& x) {
  const auto detector = ecg::PulseDetector::Make({});
  ecg::PulseDetector::State state;
  for (size_t i = 0; i < x.size(); i += 100) {
    const ops::Chunk c{ops::SampleTime(0, kFs, static_cast<int64_t>(i)), kFs,
                       std::span<const float>(x).subspan(i, std::min<size_t>(100, x.size() - i))};
    detector.Process(state, c);
  }
  return state;
}

TEST(PulseDetector, FindsEveryPulseAtAnyScale) {
  const auto detector = ecg::PulseDetector::Make({});
  for (const double scale : {0.01, 1000.0}) {
    const auto state = Detect(Pleth(BeatTimes(), scale));
    const auto verdict = detector.Judge(state, ops::FromSeconds(35), ops::FromSeconds(58));
    EXPECT_TRUE(verdict.good) << scale << ": " << verdict.why;
    EXPECT_NEAR(verdict.rate_bpm, 75, 1.5) << scale;
    EXPECT_NEAR(verdict.pulses, 23 / 0.8, 1.5) << scale;
  }
}

TEST(PulseDetector, NoiseIsNoRegularPulse) {
  // A disconnected or AC-coupled probe: noise alone, at any level. The slope sum finds humps in
  // it; they must not pass for a regular pulse in the windows the alarms are verified over.
  const auto detector = ecg::PulseDetector::Make({});
  int windows = 0, good = 0;
  for (unsigned seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> noise(0, 5);
    std::vector<float> x(static_cast<size_t>(kSeconds * kFs));
    for (auto& v : x) v = static_cast<float>(2000 + noise(rng));
    const auto state = Detect(x);
    for (double t = 5; t + 3 < kSeconds; t += 3) {
      ++windows;
      good += detector.Judge(state, ops::FromSeconds(t), ops::FromSeconds(t + 3)).good;
    }
  }
  EXPECT_LE(good, windows / 100) << good << " of " << windows << " noise windows passed";
}

TEST(PulseDetector, SmallPulseOnALargeDcLevel) {
  // A raw photoplethysmogram: pulses of a few per cent of the DC level.
  const auto detector = ecg::PulseDetector::Make({});
  auto x = Pleth(BeatTimes(), 1);
  for (auto& v : x) v += 100;
  const auto verdict = detector.Judge(Detect(x), ops::FromSeconds(35), ops::FromSeconds(58));
  EXPECT_TRUE(verdict.good) << verdict.why;
  EXPECT_NEAR(verdict.rate_bpm, 75, 1.5);
}

TEST(PulseDetector, IrregularIsNoRegularPulse) {
  const auto detector = ecg::PulseDetector::Make({});
  std::vector<double> irregular;
  for (double t = 0.6; t < kSeconds - 1.2; t += irregular.size() % 2 ? 0.45 : 1.15) {
    irregular.push_back(t);
  }
  const auto verdict =
      detector.Judge(Detect(Pleth(irregular)), ops::FromSeconds(10), ops::FromSeconds(58));
  EXPECT_FALSE(verdict.good);
  EXPECT_EQ(verdict.why, "irregular pulse intervals");
}

TEST(PulseDetector, SnapshotContinuesExactly) {
  const auto detector = ecg::PulseDetector::Make({});
  const auto x = Pleth(BeatTimes());
  ecg::PulseDetector::State straight, first;
  const size_t half = x.size() / 2;
  const std::span<const float> all(x);
  detector.Process(straight, {0, kFs, all});
  detector.Process(first, {0, kFs, all.subspan(0, half)});
  ops::SnapshotWriter w;
  first.Save(w);
  const std::string bytes = w.Take();
  ops::SnapshotReader r(bytes);
  ecg::PulseDetector::State second;
  detector.Load(second, r);
  detector.Process(second,
                   {ops::SampleTime(0, kFs, static_cast<int64_t>(half)), kFs, all.subspan(half)});
  ASSERT_EQ(second.pulses.size(), straight.pulses.size());
  for (size_t i = 0; i < straight.pulses.size(); ++i) {
    EXPECT_EQ(second.pulses[i].time_us, straight.pulses[i].time_us);
  }
  EXPECT_THROW(ecg::PulseDetector::Make({.min_rate_bpm = 5}), std::exception);
}

// Issue 16 item 9: a per-patient override rebuilds the operator; the patient's running state
// must follow it (before, it kept a pointer to the old operator: freed once the plan went, and
// its QRS and classifier options never reached the running state).
TEST(PerPatientOverride, ReachesTheRunningEcgStateAndOutlivesTheOldPlan) {
  analysis::AnalysisConfig config;
  config.operators.push_back({"ecg.arrhythmia", {}});
  const auto base = analysis::AnalysisPlan::Make(config);
  analysis::PatientAnalysis p("p", base);
  const auto at250 = Ecg(BeatTimes(), 1, 250);
  const auto at500 = Ecg(BeatTimes(), 1, 500);
  analysis::Outputs out;
  auto frame = [&](const std::vector<float>& x, double fs, int second) {
    analysis::FrameView f;
    f.device_id = "dev";
    f.signal = ops::Signal::kEcg;
    f.lead = 2;
    f.sequence = static_cast<uint64_t>(second + 1);
    f.sample_rate_hz = fs;
    f.first_sample_us = ops::FromSeconds(second);
    f.values = std::span<const float>(x).subspan(static_cast<size_t>(second * fs),
                                                 static_cast<size_t>(fs));
    return f;
  };
  for (int second = 0; second < 20; ++second) p.OnFrame(frame(at250, 250, second), out);
  // Two successive overrides: the first overridden plan (and its operator) is gone after the
  // second. learning_beats 3 instead of 8: after the rate change below the detector starts
  // again, and its first beats come out after 3 beats, not 8.
  p.SetPlan(base->WithOverrides({{"ecg.arrhythmia.learning_beats", 4}}), "");
  p.SetPlan(base->WithOverrides({{"ecg.arrhythmia.learning_beats", 3}}), "");
  int first_beat_second = -1;
  for (int second = 20; second < 40 && first_beat_second < 0; ++second) {
    out.clear();
    p.OnFrame(frame(at500, 500, second), out);
    for (const auto& e : out.events) {
      if (const auto* b = std::get_if<ops::Beat>(&e); b && b->time_us >= ops::FromSeconds(20)) {
        first_beat_second = second;
      }
    }
  }
  ASSERT_GE(first_beat_second, 20) << "no beat after the rate change";
  // 3 learning beats at 0.8 s plus the release delay: out by 24 s; with 8 not before 26 s.
  EXPECT_LE(first_beat_second, 24);
}

}  // namespace
