// EC57/epicmp episode scoring on constructed episodes: overlap, onset delay, and the exclusion
// of reference atrial flutter from AF positive predictivity.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/eval/episode_eval.h"
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
  const std::vector<EpisodeSpan> det = {{"AFIB", 0, 150}, {"AFIB", 160, 190}, {"AFIB", 300, 320}};
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

TEST(CincEvaluation, CountsVentricularEpisodesPerLabelAsFalseAlarms) {
  // Two constructed CinC records of 60 s (header only: the evaluation reads no samples): a
  // normal one with a VT and a VF episode, an AF one with AF over 40 s and a VT episode.
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "cinc_ventricular";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  };
  write("REFERENCE.csv", "record,class\nX01,N\nX02,A\n");
  for (const std::string r : {"X01", "X02"}) {
    write(r + ".hea", r + " 1 300 18000\n" + r + ".mat 16+24 1000/mV 16 0 0 0 0 ECG\n");
  }
  write("X01.jsonl",
        "{\"type\":\"episode\",\"rhythm\":\"VT\",\"start\":10.0,\"end\":14.0}\n"
        "{\"type\":\"episode\",\"rhythm\":\"VF\",\"start\":20.0,\"end\":30.0}\n"
        "{\"type\":\"episode\",\"rhythm\":\"TACHY\",\"start\":20.0,\"end\":30.0}\n");
  write("X02.jsonl",
        "{\"type\":\"episode\",\"rhythm\":\"AFIB\",\"start\":0.0,\"end\":40.0}\n"
        "{\"type\":\"episode\",\"rhythm\":\"VT\",\"start\":50.0,\"end\":52.0}\n");
  const auto ev = vigil::eval::EvaluateEpisodes(dir, dir, dir / "REFERENCE.csv");
  ASSERT_EQ(ev.cinc.size(), 2u);
  EXPECT_EQ(ev.cinc[0].ventricular_episodes, 2);  // VT and VF; TACHY is not ventricular
  EXPECT_EQ(ev.cinc[1].ventricular_episodes, 1);
  EXPECT_TRUE(ev.cinc[1].called_af);
  const std::string table = vigil::eval::CincTable(ev.cinc);
  // 2 episodes in 1 minute of N records: 120 per hour.
  EXPECT_NE(table.find("reference N:    1 records,    0 called AF,   2 VT/VF episodes (120.0 "
                       "per hour)"),
            std::string::npos)
      << table;
  EXPECT_NE(vigil::eval::CincJson(ev.cinc).find("\"ventricular_episodes\":2"), std::string::npos);
  fs::remove_all(dir);
}

TEST(EpisodeScoring, VentricularTachycardiaScoredAgainstReferenceVt) {
  // Reference VT runs of 2 s and 20 s; one detection on the long one, one in sinus rhythm.
  const std::vector<EpisodeSpan> ref = {
      {"N", 0, 100}, {"VT", 100, 102}, {"N", 102, 200}, {"VT", 200, 220}, {"N", 220, 300}};
  const std::vector<EpisodeSpan> det = {{"VT", 201, 219}, {"VT", 250, 253}};
  const auto s = vigil::eval::ScoreEpisodes(ref, det, {"VT"});
  EXPECT_EQ(s.reference_episodes, 2);
  EXPECT_EQ(s.reference_detected, 1);
  EXPECT_EQ(s.detected_true, 1);
  EXPECT_DOUBLE_EQ(s.DurationSensitivity(), 18.0 / 22.0);
  EXPECT_DOUBLE_EQ(s.DurationPositivePredictivity(), 18.0 / 21.0);
}

}  // namespace
