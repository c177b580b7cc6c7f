// Randomised streams through every registered operator: ECG-like signals with dropped,
// duplicated and reordered frames, NaN bursts, flat lines, clipping and noise. Whatever
// arrives, the analysis must not crash, every alert must follow raised -> updated* -> cleared
// with consecutive revisions, and a snapshot/restore at a random point must give exactly the
// output of the uninterrupted run (the property exactly-once processing relies on).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/replay/offline_replay.h"

namespace {

using namespace vigil;

constexpr ops::TimeUs kT0 = 1'767'225'600'000'000;

struct Frame {
  uint64_t sequence;
  ops::TimeUs first_us;
  std::vector<float> values;
};

// One second per frame at 250 Hz: Gaussian QRS-like beats at a drifting rate plus mischief.
std::vector<Frame> MakeStream(uint32_t seed, int seconds) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> noise(0, 1);
  std::vector<Frame> frames;
  double next_beat = 0.5, rr = 0.8;
  for (int s = 0; s < seconds; ++s) {
    Frame f{static_cast<uint64_t>(s + 1), kT0 + static_cast<ops::TimeUs>(s) * 1'000'000, {}};
    const double mode = u(rng);
    for (int i = 0; i < 250; ++i) {
      const double t = s + i / 250.0;
      if (t >= next_beat + 0.2) {
        rr = std::clamp(rr + 0.05 * noise(rng) + (u(rng) < 0.05 ? 0.6 : 0.0), 0.3, 2.5);
        next_beat += rr;
      }
      const double d = (t - next_beat) / 0.012;
      double v = 1.2 * std::exp(-0.5 * d * d) + 0.02 * noise(rng);
      if (mode < 0.05)
        v = std::nan("");  // invalid samples
      else if (mode < 0.10)
        v = 0;  // flat line
      else if (mode < 0.15)
        v = 3 * noise(rng);  // motion noise
      else if (mode < 0.18)
        v = std::clamp(v * 20, -5.0, 5.0);  // clipping
      f.values.push_back(static_cast<float>(v));
    }
    frames.push_back(std::move(f));
  }
  // Transport mischief: drop, duplicate and swap neighbouring frames.
  std::vector<Frame> sent;
  for (size_t i = 0; i < frames.size(); ++i) {
    const double r = u(rng);
    if (r < 0.03) continue;
    sent.push_back(frames[i]);
    if (r > 0.97) sent.push_back(frames[i]);
  }
  for (size_t i = 1; i < sent.size(); ++i) {
    if (u(rng) < 0.05) std::swap(sent[i - 1], sent[i]);
  }
  return sent;
}

analysis::FrameView View(const Frame& f) {
  analysis::FrameView v;
  v.device_id = "dev";
  v.signal = ops::Signal::kEcg;
  v.lead = 2;
  v.sequence = f.sequence;
  v.first_sample_us = f.first_us;
  v.sample_rate_hz = 250;
  v.values = f.values;
  return v;
}

std::vector<std::string> Serialise(const analysis::Outputs& out) {
  std::vector<std::string> s;
  for (const auto& a : out.alerts) s.push_back("A" + a.SerializeAsString());
  for (const auto& g : out.aggregates) s.push_back("G" + g.SerializeAsString());
  return s;
}

void CheckAlertLifecycles(const std::vector<v1::Alert>& alerts) {
  std::map<std::string, const v1::Alert*> last;
  for (const auto& a : alerts) {
    auto it = last.find(a.alert_id());
    if (it == last.end()) {
      EXPECT_EQ(a.state(), v1::ALERT_STATE_RAISED) << a.ShortDebugString();
      EXPECT_EQ(a.revision(), 0u);
    } else {
      EXPECT_NE(it->second->state(), v1::ALERT_STATE_CLEARED) << "record after CLEARED";
      EXPECT_EQ(a.revision(), it->second->revision() + 1);
      EXPECT_NE(a.state(), v1::ALERT_STATE_RAISED);
    }
    last[a.alert_id()] = &a;
  }
  for (const auto& [id, a] : last) EXPECT_EQ(a->state(), v1::ALERT_STATE_CLEARED) << id;
}

TEST(PatientAnalysisRandom, SurvivesMischiefAndSnapshotsExactly) {
  auto plan = analysis::AnalysisPlan::Make(replay::DefaultAnalysisConfig());
  ASSERT_FALSE(plan->operators().empty()) << "no operators registered";
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE(seed);
    const auto frames = MakeStream(seed, 600);
    analysis::PatientAnalysis straight("p", plan);
    analysis::Outputs a;
    for (const auto& f : frames) straight.OnFrame(View(f), a);
    straight.Finish(a);
    CheckAlertLifecycles(a.alerts);
    size_t beats = 0;
    for (const auto& e : a.events) beats += std::holds_alternative<ops::Beat>(e);
    EXPECT_GT(beats, 200u) << "the stream must exercise the ECG operators";

    std::mt19937 rng(seed * 7919);
    const size_t cut = std::uniform_int_distribution<size_t>(1, frames.size() - 1)(rng);
    analysis::PatientAnalysis first("p", plan);
    analysis::Outputs b;
    for (size_t i = 0; i < cut; ++i) first.OnFrame(View(frames[i]), b);
    const std::string bytes = first.Snapshot().SerializeAsString();
    v1::PatientStateSnapshot snapshot;
    ASSERT_TRUE(snapshot.ParseFromString(bytes));
    analysis::PatientAnalysis second("p", plan);
    second.Restore(snapshot);
    for (size_t i = cut; i < frames.size(); ++i) second.OnFrame(View(frames[i]), b);
    second.Finish(b);
    EXPECT_EQ(Serialise(a), Serialise(b)) << "cut at frame " << cut;
    EXPECT_EQ(a.events.size(), b.events.size());
  }
}

}  // namespace
