// QRS detector, beat classifier, heart-rate rule and the ecg.arrhythmia operator on
// constructed ECGs whose true beats are known (the MIT-BIH scores are in tests/accuracy).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "operators/core/options.h"
#include "operators/ecg/ecg_monitor.h"
#include "operators/ecg/heart_rate.h"
#include "operators/ecg/qrs_detector.h"
#include "pipeline/analysis/operator_registry.h"

namespace {

using namespace vigil;

struct TrueBeat {
  double t;  // R peak time (s)
  bool ventricular;
};

struct Synthetic {
  std::vector<float> x;
  std::vector<TrueBeat> beats;
};

double Gauss(double t, double centre, double sigma) {
  const double z = (t - centre) / sigma;
  return std::exp(-0.5 * z * z);
}

// Sinus rhythm around 75 bpm with P, QRS and T waves, baseline wander, 50 Hz mains and noise;
// every `pvc_every`-th beat (0 = none) a premature, wide ventricular beat with compensatory
// pause.
Synthetic MakeEcg(double fs, double seconds, int pvc_every = 0, uint32_t seed = 7) {
  Synthetic s;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> jitter(-0.05, 0.05);
  double t = 0.6;
  int k = 0;
  while (t < seconds - 0.6) {
    const bool pvc = pvc_every > 0 && k > 10 && k % pvc_every == 0;
    s.beats.push_back({t, pvc});
    t += pvc ? 1.05 : (0.8 + jitter(rng));
    if (pvc_every > 0 && (k + 1) % pvc_every == 0 && k + 1 > 10) t -= 0.3;  // premature next
    ++k;
  }
  const auto n = static_cast<size_t>(seconds * fs);
  s.x.assign(n, 0.0f);
  std::normal_distribution<double> noise(0, 0.02);
  for (size_t i = 0; i < n; ++i) {
    const double ti = static_cast<double>(i) / fs;
    double v = 0.3 * std::sin(2 * std::numbers::pi * 0.25 * ti) +
               0.1 * std::sin(2 * std::numbers::pi * 50 * ti) + noise(rng) - 0.4;
    s.x[i] = static_cast<float>(v);
  }
  for (const auto& b : s.beats) {
    const auto lo = static_cast<size_t>(std::max(0.0, (b.t - 0.5) * fs));
    const auto hi = std::min(n, static_cast<size_t>((b.t + 0.6) * fs));
    for (size_t i = lo; i < hi; ++i) {
      const double ti = static_cast<double>(i) / fs;
      double v;
      if (b.ventricular) {
        v = 1.6 * Gauss(ti, b.t, 0.03) - 0.5 * Gauss(ti, b.t + 0.07, 0.03) -
            0.4 * Gauss(ti, b.t + 0.3, 0.06);
      } else {
        v = 0.15 * Gauss(ti, b.t - 0.16, 0.025) - 0.1 * Gauss(ti, b.t - 0.025, 0.008) +
            1.2 * Gauss(ti, b.t, 0.01) - 0.25 * Gauss(ti, b.t + 0.025, 0.008) +
            0.3 * Gauss(ti, b.t + 0.25, 0.045);
      }
      s.x[i] += static_cast<float>(v);
    }
  }
  return s;
}

std::vector<ecg::QrsDetection> DetectAll(const ecg::QrsOptions& o, std::span<const float> x) {
  ecg::QrsDetector d(o);
  std::vector<ecg::QrsDetection> out;
  d.Process(x, out);
  d.Flush(out);
  return out;
}

class QrsRates : public ::testing::TestWithParam<double> {};

TEST_P(QrsRates, FindsEveryBeatAtTheRPeak) {
  const double fs = GetParam();
  const auto ecg = MakeEcg(fs, 60);
  ecg::QrsOptions o;
  o.sample_rate_hz = fs;
  const auto found = DetectAll(o, ecg.x);
  ASSERT_EQ(found.size(), ecg.beats.size());
  for (size_t i = 0; i < found.size(); ++i) {
    const double t = static_cast<double>(found[i].sample) / fs;
    // Filter delay corrected: the fiducial point is on the R peak (within 10 ms + a sample).
    EXPECT_NEAR(t, ecg.beats[i].t, 0.010 + 1 / fs) << "beat " << i << " at " << fs << " Hz";
  }
}

INSTANTIATE_TEST_SUITE_P(Rates, QrsRates, ::testing::Values(125.0, 250.0, 360.0, 500.0, 1000.0));

TEST(QrsDetector, ChunkingDoesNotChangeTheBeats) {
  const auto ecg = MakeEcg(360, 90, 7);
  ecg::QrsOptions o;
  const auto whole = DetectAll(o, ecg.x);
  ASSERT_GT(whole.size(), 100u);

  ecg::QrsDetector d(o);
  std::vector<ecg::QrsDetection> pieces;
  std::mt19937 rng(3);
  std::uniform_int_distribution<size_t> len(0, 700);
  for (size_t pos = 0; pos < ecg.x.size();) {
    const size_t n = std::min(len(rng), ecg.x.size() - pos);
    d.Process(std::span(ecg.x).subspan(pos, n), pieces);
    pos += n;
  }
  d.Flush(pieces);
  ASSERT_EQ(pieces.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(pieces[i].sample, whole[i].sample);
    EXPECT_EQ(pieces[i].amplitude_mv, whole[i].amplitude_mv);
  }
}

TEST(QrsDetector, CopyConditionedEqualsConditionedInsideAndOutsideTheRing) {
  const auto ecg = MakeEcg(360, 30);
  ecg::QrsOptions o;
  ecg::QrsDetector d(o);
  std::vector<ecg::QrsDetection> beats;
  std::vector<float> out(300);
  for (size_t pos = 0; pos < ecg.x.size(); pos += 1000) {
    d.Process(std::span(ecg.x).subspan(pos, std::min<size_t>(1000, ecg.x.size() - pos)), beats);
    // Windows before the stream, across the ring's oldest sample and its wrap, and past the
    // newest sample.
    for (const int64_t first : {int64_t{-150}, d.samples_seen() - d.ring_capacity() - 100,
                                d.samples_seen() - 2000, d.samples_seen() - 150}) {
      d.CopyConditioned(first, out);
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_EQ(out[i], d.Conditioned(first + static_cast<int64_t>(i)))
            << "first " << first << " i " << i << " seen " << d.samples_seen();
      }
    }
  }
}

TEST(QrsDetector, SnapshotContinuesExactlyAndBadBytesAreRejected) {
  const auto ecg = MakeEcg(250, 60, 5);
  ecg::QrsOptions o;
  o.sample_rate_hz = 250;
  const auto whole = DetectAll(o, ecg.x);

  ecg::QrsDetector first(o);
  std::vector<ecg::QrsDetection> out;
  const size_t cut = 7777;  // mid-beat, mid-learning of nothing in particular
  first.Process(std::span(ecg.x).first(cut), out);
  ops::SnapshotWriter w;
  first.Save(w);
  const std::string bytes = w.Take();

  ecg::QrsDetector second(o);
  ops::SnapshotReader r(bytes);
  second.Load(r);
  EXPECT_TRUE(r.AtEnd());
  second.Process(std::span(ecg.x).subspan(cut), out);
  second.Flush(out);
  ASSERT_EQ(out.size(), whole.size());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].sample, whole[i].sample);

  ecg::QrsDetector third(o);
  ops::SnapshotReader truncated(std::string_view(bytes).substr(0, bytes.size() / 2));
  EXPECT_THROW(third.Load(truncated), ops::SnapshotError);
  ecg::QrsOptions other = o;
  other.sample_rate_hz = 500;
  ecg::QrsDetector fourth(other);
  ops::SnapshotReader wrong_rate(bytes);
  EXPECT_THROW(fourth.Load(wrong_rate), ops::SnapshotError);
}

TEST(QrsDetector, FlatLineAndNoiseGiveNoBeats) {
  ecg::QrsOptions o;
  std::vector<float> flat(360 * 30, 0.2f);
  EXPECT_TRUE(DetectAll(o, flat).empty());
  std::vector<float> invalid(360 * 10, std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(DetectAll(o, invalid).empty());
}

TEST(QrsDetector, OptionsAreValidatedWithFieldNames) {
  ecg::QrsOptions o;
  o.sample_rate_hz = 2000;
  try {
    ecg::QrsDetector d(o);
    FAIL() << "2000 Hz accepted";
  } catch (const ops::OptionError& e) {
    EXPECT_EQ(e.field(), "qrs.sample_rate_hz");
  }
  o = {};
  o.band_low_hz = 20;
  o.band_high_hz = 10;
  EXPECT_THROW(ecg::QrsDetector{o}, ops::OptionError);
}

TEST(HeartRate, MonitorRuleTwelveOrFour) {
  ecg::HeartRateTracker hr;
  EXPECT_EQ(hr.Current(), 0);
  for (int i = 0; i < 12; ++i) hr.Add(0.8);
  EXPECT_NEAR(hr.Current(), 75, 1e-4);
  hr.Add(0.4);  // one short interval moves a 12-beat mean a little
  EXPECT_NEAR(hr.Current(), 60.0 * 12 / (11 * 0.8 + 0.4), 1e-3);
  // Three intervals > 1.2 s: switch to the last 4 (0.8 and three 1.5 s).
  ecg::HeartRateTracker slow;
  for (int i = 0; i < 12; ++i) slow.Add(0.8);
  slow.Add(1.5);
  slow.Add(1.5);
  EXPECT_NEAR(slow.Current(), 60.0 * 12 / (10 * 0.8 + 2 * 1.5), 1e-3);  // only two slow: 12
  slow.Add(1.5);
  EXPECT_NEAR(slow.Current(), 60.0 * 4 / (0.8 + 3 * 1.5), 1e-3);
}

std::unique_ptr<const ops::StreamOperator> MakeMonitor(const ops::Parameters& p = {}) {
  const auto* entry = analysis::FindOperator("ecg.arrhythmia");
  EXPECT_NE(entry, nullptr);
  return entry->make(p, {});
}

struct Run {
  std::vector<ops::Beat> beats;
};

Run Drive(const ops::StreamOperator& op, ops::OperatorState& state, std::span<const float> x,
          double fs, ops::TimeUs start_us, size_t chunk, bool finish = true) {
  Run r;
  ops::Events events;
  for (size_t i = 0; i < x.size(); i += chunk) {
    const ops::Chunk c{ops::SampleTime(start_us, fs, static_cast<int64_t>(i)), fs,
                       x.subspan(i, std::min(chunk, x.size() - i))};
    op.Process(state, ops::Signal::kEcg, c, events);
  }
  if (finish) op.Finish(state, events);
  for (const auto& e : events) {
    if (const auto* b = std::get_if<ops::Beat>(&e)) r.beats.push_back(*b);
  }
  return r;
}

TEST(EcgMonitor, BeatsCarryDeviceTimeRrHeartRateAndLabels) {
  const double fs = 500;
  const auto ecg = MakeEcg(fs, 120, 6);
  const auto op = MakeMonitor();
  auto state = op->MakeState();
  const ops::TimeUs start = 1'700'000'000'000'000;
  const auto run = Drive(*op, *state, ecg.x, fs, start, 250);
  ASSERT_EQ(run.beats.size(), ecg.beats.size());
  int v_true = 0, v_found = 0, v_missed = 0, v_false = 0;
  for (size_t i = 0; i < run.beats.size(); ++i) {
    const auto& b = run.beats[i];
    EXPECT_NEAR(ops::ToSeconds(b.time_us - start), ecg.beats[i].t, 0.012);
    EXPECT_EQ(b.time_us, ops::SampleTime(start, fs, b.sample));
    if (i > 0) {
      EXPECT_NEAR(b.rr_s, ecg.beats[i].t - ecg.beats[i - 1].t, 0.02);
    } else {
      EXPECT_EQ(b.rr_s, 0);
    }
    if (i >= 13) {
      EXPECT_GT(b.heart_rate_bpm, 60);
      EXPECT_LT(b.heart_rate_bpm, 90);
    }
    const bool is_v = b.label == ops::BeatClass::kVentricular;
    v_true += ecg.beats[i].ventricular;
    v_found += ecg.beats[i].ventricular && is_v;
    v_missed += ecg.beats[i].ventricular && !is_v;
    v_false += !ecg.beats[i].ventricular && is_v;
  }
  EXPECT_GT(v_true, 10);
  EXPECT_EQ(v_missed, 0);
  EXPECT_EQ(v_false, 0);
  EXPECT_EQ(v_found, v_true);
}

TEST(EcgMonitor, SnapshotRestoreMidStreamGivesTheSameBeats) {
  const double fs = 360;
  const auto ecg = MakeEcg(fs, 90, 5);
  const auto op = MakeMonitor();
  auto whole_state = op->MakeState();
  const auto whole = Drive(*op, *whole_state, ecg.x, fs, 0, 360);

  auto a = op->MakeState();
  const size_t cut = 360 * 3 + 123;  // while the classifier still holds its learning beats
  auto first = Drive(*op, *a, std::span(ecg.x).first(cut), fs, 0, 360, false);
  auto b = op->MakeState();
  b->Restore(a->Snapshot());
  const auto rest = Drive(*op, *b, std::span(ecg.x).subspan(cut), fs,
                          ops::SampleTime(0, fs, static_cast<int64_t>(cut)), 360);
  first.beats.insert(first.beats.end(), rest.beats.begin(), rest.beats.end());
  ASSERT_EQ(first.beats.size(), whole.beats.size());
  for (size_t i = 0; i < whole.beats.size(); ++i) {
    EXPECT_EQ(first.beats[i].sample, whole.beats[i].sample);
    EXPECT_EQ(first.beats[i].time_us, whole.beats[i].time_us);
    EXPECT_EQ(first.beats[i].label, whole.beats[i].label);
    EXPECT_EQ(first.beats[i].heart_rate_bpm, whole.beats[i].heart_rate_bpm);
  }
  EXPECT_THROW(b->Restore("garbage"), ops::SnapshotError);
  // A fresh state snapshots and restores too.
  auto fresh = op->MakeState();
  EXPECT_NO_THROW(b->Restore(fresh->Snapshot()));
}

TEST(EcgMonitor, GapBreaksTheRrChain) {
  const double fs = 250;
  const auto ecg = MakeEcg(fs, 60);
  const auto op = MakeMonitor();
  auto state = op->MakeState();
  ops::Events events;
  const size_t half = ecg.x.size() / 2;
  op->Process(*state, ops::Signal::kEcg, {0, fs, std::span(ecg.x).first(half)}, events);
  const ops::TimeUs gap_from = ops::SampleTime(0, fs, static_cast<int64_t>(half));
  const ops::TimeUs resume = gap_from + 5 * ops::kMicrosPerSecond;
  op->OnGap(*state, ops::Signal::kEcg, gap_from, resume, events);
  const size_t before = events.size();
  op->Process(*state, ops::Signal::kEcg, {resume, fs, std::span(ecg.x).subspan(half)}, events);
  op->Finish(*state, events);
  // The rhythm stage adds episodes to the stream; the beats are what this test is about.
  std::vector<ops::Beat> after;
  for (size_t i = before; i < events.size(); ++i) {
    if (const auto* b = std::get_if<ops::Beat>(&events[i])) after.push_back(*b);
  }
  ASSERT_GT(after.size(), 10u);
  EXPECT_GE(after[0].time_us, resume);
  EXPECT_EQ(after[0].rr_s, 0);  // no interval across the gap
  for (size_t i = 1; i < after.size(); ++i) EXPECT_LT(after[i].rr_s, 1.0);
}

TEST(EcgMonitor, BadParametersNameTheField) {
  try {
    MakeMonitor({{"notch_hz", 400}});
    FAIL() << "notch 400 Hz accepted";
  } catch (const ops::OptionError& e) {
    EXPECT_EQ(e.field(), "ecg.arrhythmia.notch_hz");
    EXPECT_NE(std::string(e.what()).find("400"), std::string::npos);
  }
  try {
    MakeMonitor({{"treshold_fraction", 0.3}});
    FAIL() << "typo accepted";
  } catch (const ops::OptionError& e) {
    EXPECT_EQ(e.field(), "ecg.arrhythmia.treshold_fraction");
  }
  EXPECT_THROW(MakeMonitor({{"learning_beats", 2.5}}), ops::OptionError);
  EXPECT_THROW(MakeMonitor({{"v_corr", 0.95}}), ops::OptionError);  // above match_corr
  EXPECT_NO_THROW(MakeMonitor({{"notch_hz", 60}, {"threshold_fraction", 0.3}}));
  EXPECT_NO_THROW(MakeMonitor({{"notch_hz", 0}}));
}

TEST(EcgMonitor, UnsupportedRatesAndOtherSignalsAreIgnored) {
  const auto op = MakeMonitor();
  auto state = op->MakeState();
  ops::Events events;
  std::vector<float> x(5000, 0.0f);
  op->Process(*state, ops::Signal::kEcg, {0, 50, x}, events);
  op->Process(*state, ops::Signal::kFlow, {0, 360, x}, events);
  op->Process(*state, ops::Signal::kPlethysmogram, {0, 10, x}, events);  // below 25 Hz
  op->Finish(*state, events);
  EXPECT_TRUE(events.empty());
  ASSERT_EQ(op->inputs().size(), 3u);
  EXPECT_EQ(op->inputs()[0], ops::Signal::kEcg);
  EXPECT_EQ(op->inputs()[1], ops::Signal::kPlethysmogram);
  EXPECT_EQ(op->inputs()[2], ops::Signal::kArterialPressure);
}

}  // namespace
