// The alert manager's state machine on constructed episodes: minimum durations, hysteresis,
// latching, technical suppression, rate limiting, deterministic ids and snapshot/restore.
#include "pipeline/analysis/alert_manager.h"

#include <gtest/gtest.h>

namespace {

using vigil::analysis::AlertManager;
using vigil::analysis::AlertPolicy;
using vigil::ops::Episode;
using vigil::ops::EpisodeKind;
using vigil::ops::FromSeconds;
using vigil::ops::TimeUs;
namespace v1 = vigil::v1;

constexpr TimeUs kT0 = 1'767'225'600'000'000;

TimeUs At(double s) {
  return kT0 + FromSeconds(s);
}

Episode Make(EpisodeKind kind, Episode::Phase phase, double start_s, double end_s = 0) {
  Episode e;
  e.kind = kind;
  e.phase = phase;
  e.start_us = At(start_s);
  e.end_us = end_s > 0 ? At(end_s) : 0;
  e.why.algorithm = "test";
  e.why.version = "1";
  e.why.rule = "rule";
  e.why.measures.push_back({"heart_rate", 35, "bpm"});
  return e;
}

class AlertManagerTest : public ::testing::Test {
 protected:
  AlertManager manager{"patient-1", AlertPolicy{}};
  std::vector<v1::Alert> out;
  void Open(EpisodeKind k, double s) {
    manager.OnEpisode(Make(k, Episode::Phase::kOpened, s), "dev", out);
  }
  void Close(EpisodeKind k, double s, double e) {
    manager.OnEpisode(Make(k, Episode::Phase::kClosed, s, e), "dev", out);
  }
  void Advance(double s) { manager.AdvanceTo(At(s), out); }
};

TEST_F(AlertManagerTest, AtrialFibrillationWaitsForItsMinimumDuration) {
  Open(EpisodeKind::kAtrialFibrillation, 100);
  Advance(129);
  EXPECT_TRUE(out.empty()) << "AF alert needs >= 30 s";
  Advance(130);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].state(), v1::ALERT_STATE_RAISED);
  EXPECT_EQ(out[0].priority(), v1::PRIORITY_MEDIUM);
  EXPECT_EQ(out[0].onset_time_us(), At(100));
  EXPECT_EQ(out[0].event_time_us(), At(130));
}

TEST_F(AlertManagerTest, ShortAtrialFibrillationNeverAlerts) {
  Open(EpisodeKind::kAtrialFibrillation, 100);
  Advance(120);
  Close(EpisodeKind::kAtrialFibrillation, 100, 125);
  Advance(400);
  EXPECT_TRUE(out.empty());
}

TEST_F(AlertManagerTest, ClearsAfterHysteresisAndReopensWithinIt) {
  Open(EpisodeKind::kBradycardia, 10);
  Close(EpisodeKind::kBradycardia, 10, 40);
  Advance(70);  // 30 s after the end: within the 60 s hysteresis
  Open(EpisodeKind::kBradycardia, 75);
  Advance(100);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].state(), v1::ALERT_STATE_RAISED);
  EXPECT_EQ(out[1].state(), v1::ALERT_STATE_UPDATED) << "a quick return continues the same alert";
  EXPECT_EQ(out[1].alert_id(), out[0].alert_id());
  Close(EpisodeKind::kBradycardia, 75, 110);
  Advance(169);
  EXPECT_EQ(out.size(), 2u);
  Advance(170);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].state(), v1::ALERT_STATE_CLEARED);
  EXPECT_EQ(out[2].end_time_us(), At(110));
  EXPECT_EQ(out[2].revision(), 2u);
}

TEST_F(AlertManagerTest, LatchingAlertStaysUntilHoldPasses) {
  Open(EpisodeKind::kVentricularFibrillation, 10);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].priority(), v1::PRIORITY_HIGH);
  EXPECT_TRUE(out[0].latching());
  Close(EpisodeKind::kVentricularFibrillation, 10, 20);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].state(), v1::ALERT_STATE_UPDATED);
  EXPECT_TRUE(out[1].condition_ended());
  Advance(20 + 299);
  EXPECT_EQ(out.size(), 2u);
  Advance(20 + 300);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].state(), v1::ALERT_STATE_CLEARED);
}

TEST_F(AlertManagerTest, TechnicalConditionSuppressesClinicalEcgAlert) {
  Open(EpisodeKind::kEcgNoise, 0);
  Advance(10);  // noise raised after its 10 s
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].technical());
  Open(EpisodeKind::kAsystole, 12);
  Advance(20);
  EXPECT_EQ(out.size(), 1u) << "asystole during noise is what noise fakes";
  EXPECT_EQ(manager.suppressed_by_technical(), 1u);
  // A respiratory condition is not suppressed by ECG noise.
  Open(EpisodeKind::kDisconnection, 21);
  EXPECT_EQ(out.size(), 2u);
}

TEST_F(AlertManagerTest, RateLimitHoldsBackMediumButNeverHigh) {
  AlertPolicy policy;
  policy.max_raised_per_hour = 2;
  policy.reopen_within_s = 0;
  AlertManager limited("p", policy);
  std::vector<v1::Alert> got;
  for (int i = 0; i < 4; ++i) {
    const double s = 100.0 * i;
    limited.OnEpisode(Make(EpisodeKind::kPause, Episode::Phase::kClosed, s, s + 4), "d", got);
    limited.AdvanceTo(At(s + 50), got);
  }
  int raised = 0;
  for (const auto& a : got) raised += a.state() == v1::ALERT_STATE_RAISED;
  EXPECT_EQ(raised, 2);
  EXPECT_EQ(limited.suppressed_by_rate_limit(), 2u);
  limited.OnEpisode(Make(EpisodeKind::kAsystole, Episode::Phase::kOpened, 500), "d", got);
  EXPECT_EQ(got.back().condition(), v1::CONDITION_ASYSTOLE) << "high priority is never held back";
}

TEST_F(AlertManagerTest, ApneasFeedTheAhiNotAlarms) {
  Close(EpisodeKind::kApnea, 10, 25);
  Advance(200);
  EXPECT_TRUE(out.empty());
}

TEST(AlertId, DeterministicAndDistinct) {
  const auto a = vigil::analysis::AlertId("p1", v1::CONDITION_ASYSTOLE, 123);
  EXPECT_EQ(a, vigil::analysis::AlertId("p1", v1::CONDITION_ASYSTOLE, 123));
  EXPECT_NE(a, vigil::analysis::AlertId("p2", v1::CONDITION_ASYSTOLE, 123));
  EXPECT_NE(a, vigil::analysis::AlertId("p1", v1::CONDITION_PAUSE, 123));
  EXPECT_NE(a, vigil::analysis::AlertId("p1", v1::CONDITION_ASYSTOLE, 124));
  EXPECT_EQ(a.size(), 16u);
}

TEST_F(AlertManagerTest, SnapshotRestoreContinuesIdentically) {
  Open(EpisodeKind::kAtrialFibrillation, 0);
  Advance(40);
  Open(EpisodeKind::kBradycardia, 41);
  const std::string snap = manager.Snapshot();

  AlertManager restored("patient-1", AlertPolicy{});
  restored.Restore(snap);
  std::vector<v1::Alert> a, b;
  for (auto* m : {&manager, &restored}) {
    auto& o = m == &manager ? a : b;
    m->OnEpisode(Make(EpisodeKind::kAtrialFibrillation, Episode::Phase::kClosed, 0, 90), "dev", o);
    m->AdvanceTo(At(200), o);
  }
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(a[i].SerializeAsString(), b[i].SerializeAsString());
  EXPECT_THROW(restored.Restore(snap.substr(0, snap.size() / 2)), vigil::ops::SnapshotError);
}

}  // namespace
