// EC57/epicmp episode scoring on constructed episodes: overlap, onset delay, and the exclusion
// of reference atrial flutter from AF positive predictivity.
#include <gtest/gtest.h>

#include "pipeline/eval/episode_score.h"

namespace {

using vigil::eval::EpisodeSpan;

TEST(EpisodeScoring, OverlapDurationsAndOnsetDelay) {
  const std::vector<EpisodeSpan> ref = {{"AFIB", 100, 200}, {"N", 200, 300}, {"AFIB", 400, 500}};
  const std::vector<EpisodeSpan> det = {{"AFIB", 110, 220}, {"AFIB", 600, 640}};
  const auto s = vigil::eval::ScoreEpisodes(ref, det, {"AFIB"});
  EXPECT_EQ(s.reference_episodes, 2);
  EXPECT_EQ(s.reference_detected, 1);
  EXPECT_EQ(s.detected_episodes, 2);
  EXPECT_EQ(s.detected_true, 1);
  EXPECT_DOUBLE_EQ(s.overlap_s, 90);
  EXPECT_DOUBLE_EQ(s.reference_s, 200);
  EXPECT_DOUBLE_EQ(s.detected_s, 150);
  ASSERT_EQ(s.onset_delays_s.size(), 1u);
  EXPECT_DOUBLE_EQ(s.onset_delays_s[0], 10);
}

TEST(EpisodeScoring, ReferenceFlutterIsCutOutOfAfPositivePredictivity) {
  // AF 0-100 s, flutter 100-200 s, sinus after. Detections: one AF call running on through the
  // flutter (0-150 s), one wholly inside the flutter (160-190 s), one in sinus (300-320 s).
  const std::vector<EpisodeSpan> ref = {{"AFIB", 0, 100}, {"AFL", 100, 200}, {"N", 200, 400}};
  const std::vector<EpisodeSpan> det = {
      {"AFIB", 0, 150}, {"AFIB", 160, 190}, {"AFIB", 300, 320}};
  const auto plain = vigil::eval::ScoreEpisodes(ref, det, {"AFIB"});
  EXPECT_EQ(plain.detected_episodes, 3);
  EXPECT_DOUBLE_EQ(plain.detected_s, 200);
  const auto ec57 = vigil::eval::ScoreAfEpisodes(ref, det);
  // The flutter part of the first call is not scored, the call inside the flutter not at all;
  // the call in sinus rhythm stays a false positive.
  EXPECT_EQ(ec57.detected_episodes, 2);
  EXPECT_EQ(ec57.detected_true, 1);
  EXPECT_DOUBLE_EQ(ec57.detected_s, 120);
  EXPECT_DOUBLE_EQ(ec57.overlap_s, 100);
  EXPECT_DOUBLE_EQ(ec57.DurationPositivePredictivity(), 100.0 / 120.0);
  // Sensitivity is not affected.
  EXPECT_DOUBLE_EQ(ec57.DurationSensitivity(), plain.DurationSensitivity());
}

}  // namespace
