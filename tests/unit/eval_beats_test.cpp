// EC57 beat scoring and the replay-line reader of `vigil eval`, on constructed annotations.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "pipeline/eval/beat_scoring.h"
#include "pipeline/eval/evaluation.h"
#include "pipeline/eval/json_lines.h"
#include "support/test_support.h"

namespace {

using namespace vigil;

io::WfdbAnnotation Ann(int64_t sample, int code) {
  io::WfdbAnnotation a;
  a.sample = sample;
  a.code = code;
  return a;
}
constexpr int kNormal = 1, kPvc = 5, kFusion = 6, kVfOn = 32, kVfOff = 33, kRhythm = 28;

TEST(BeatScoring, MatchWindowFalsePositivesAndNegatives) {
  const double fs = 100;  // 150 ms = 15 samples
  const std::vector<io::WfdbAnnotation> ref = {Ann(100, kNormal), Ann(200, kNormal), Ann(300, kPvc),
                                               Ann(400, kNormal), Ann(450, kRhythm)};
  const std::vector<eval::TestBeat> test = {
      {114, 'N'},  // within 15 samples: match
      {216, 'N'},  // 16 samples off: a false positive and a false negative
      {301, 'V'},  // match, V correct
      {398, 'V'},  // match, V on a normal beat: V false positive
      {401, 'N'},  // second detection near one beat: false positive
  };
  const auto c = eval::ScoreBeats(ref, test, fs);
  EXPECT_EQ(c.ref_beats, 4);  // the rhythm annotation is not a beat
  EXPECT_EQ(c.tp, 3);
  EXPECT_EQ(c.fn, 1);
  EXPECT_EQ(c.fp, 2);
  EXPECT_EQ(c.v_tp, 1);
  EXPECT_EQ(c.v_fn, 0);
  EXPECT_EQ(c.v_fp, 1);
  EXPECT_DOUBLE_EQ(c.Se(), 75.0);
  EXPECT_DOUBLE_EQ(c.PPlus(), 60.0);
  EXPECT_DOUBLE_EQ(c.VPPlus(), 50.0);
}

TEST(BeatScoring, ClosestPairsWinAndEachBeatIsUsedOnce) {
  const double fs = 100;
  const std::vector<io::WfdbAnnotation> ref = {Ann(100, kNormal), Ann(120, kNormal)};
  // 110 is within the window of both; 121 is closest to 120, so 110 must pair with 100.
  const auto c = eval::ScoreBeats(ref, {{110, 'N'}, {121, 'N'}}, fs);
  EXPECT_EQ(c.tp, 2);
  EXPECT_EQ(c.fp, 0);
  EXPECT_EQ(c.fn, 0);
}

TEST(BeatScoring, LearningPeriodAndVentricularFibrillationAreNotScored) {
  const double fs = 100;
  std::vector<io::WfdbAnnotation> ref = {Ann(100, kNormal),   Ann(29990, kNormal),
                                         Ann(31000, kNormal), Ann(32000, kVfOn),
                                         Ann(33000, kVfOff),  Ann(34000, kNormal)};
  const std::vector<eval::TestBeat> test = {{5000, 'N'},  {29995, 'N'}, {31000, 'N'},
                                            {32500, 'N'}, {34000, 'V'}, {34500, 'N'}};
  eval::BeatScoringOptions late;
  late.start_s = 300;  // 30000 samples
  const auto c = eval::ScoreBeats(ref, test, fs, late);
  EXPECT_EQ(c.ref_beats, 2);  // 31000, 34000
  EXPECT_EQ(c.tp, 2);
  EXPECT_EQ(c.fp, 1);  // 34500; 5000 and 29995 are before the start, 32500 in VF
  EXPECT_EQ(c.v_fp, 1);
  const auto whole = eval::ScoreBeats(ref, test, fs);
  EXPECT_EQ(whole.ref_beats, 4);
  EXPECT_EQ(whole.fn, 1);  // 100
  EXPECT_EQ(whole.fp, 2);  // 5000, 34500
}

TEST(BeatScoring, VentricularOnFusionIsNotAFalsePositive) {
  const auto c = eval::ScoreBeats({Ann(100, kFusion)}, {{100, 'V'}}, 100);
  EXPECT_EQ(c.v_fp, 0);
  EXPECT_TRUE(std::isnan(c.VSe()));
  EXPECT_TRUE(eval::IsPacedRecord("217"));
  EXPECT_FALSE(eval::IsPacedRecord("201"));
}

TEST(JsonLines, TopLevelScalarsAndNestedValuesSkipped) {
  const auto f = eval::ParseJsonObjectLine(R"({"type":"beat","t":12.345,"sample":4444,"label":"N",)"
                                           R"("why":{"a":[1,{"b":"}"}]},"ok":true,"x":null})");
  EXPECT_EQ(eval::StringField(f, "type"), "beat");
  EXPECT_DOUBLE_EQ(*eval::NumberField(f, "t"), 12.345);
  EXPECT_DOUBLE_EQ(*eval::NumberField(f, "sample"), 4444);
  EXPECT_EQ(eval::StringField(f, "label"), "N");
  EXPECT_FALSE(eval::NumberField(f, "why"));
  EXPECT_FALSE(eval::NumberField(f, "label"));
  EXPECT_THROW(eval::ParseJsonObjectLine(R"({"type":"beat")"), eval::JsonError);
  EXPECT_THROW(eval::ParseJsonObjectLine(R"({"t":1} x)"), eval::JsonError);
  EXPECT_EQ(eval::JsonQuote("a\"b\\\n"), R"("a\"b\\\n")");
  EXPECT_EQ(eval::JsonNumber(std::nan("")), "null");
}

TEST(ReplayBeats, ReadsBeatLinesOnlyAndUsesTheTime) {
  const auto path =
      std::filesystem::temp_directory_path() / (vigil::testing::UniqueName("replay") + ".jsonl");
  {
    std::ofstream out(path);
    out << R"({"type":"beat","t":1.0,"sample":1,"label":"N"})"
        << "\n"
        << R"({"type":"episode","kind":"AFIB","start":0.5,"why":{"measures":[]}})"
        << "\n"
        << "\n"
        << R"({"type":"beat","t":2.5,"sample":2,"label":"V"})"
        << "\n";
  }
  const auto beats = eval::ReadReplayBeats(path, 360);
  ASSERT_EQ(beats.size(), 2u);
  EXPECT_EQ(beats[0].sample, 360);
  EXPECT_EQ(beats[1].sample, 900);
  EXPECT_EQ(beats[1].label, 'V');
  {
    std::ofstream out(path);
    out << R"({"type":"beat","label":"N"})"
        << "\n";
  }
  EXPECT_THROW(eval::ReadReplayBeats(path, 360), std::runtime_error);
  std::filesystem::remove(path);
}

}  // namespace
