// `vigil eval --alarms`: an alert counts when it is active in the record's last 16 s.
#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "pipeline/eval/alarm_eval.h"

namespace {

constexpr int64_t kOrigin = 1'767'225'600'000'000;

std::string Line(double t, const std::string& condition, const std::string& state) {
  return "{\"type\":\"alert\",\"alert\":{\"alertId\":\"x\",\"condition\":\"CONDITION_" + condition +
         "\",\"state\":\"ALERT_STATE_" + state + "\",\"eventTimeUs\":\"" +
         std::to_string(kOrigin + static_cast<int64_t>(t * 1e6)) +
         "\",\"evidence\":{\"measurements\":[{\"name\":\"x\"}]}}}\n";
}

bool Active(const std::string& lines, const std::string& alarm) {
  std::istringstream in("{\"type\":\"replay\",\"origin_us\":" + std::to_string(kOrigin) +
                        ",\"patient\":\"p\"}\n{\"type\":\"beat\",\"t\":1.0,\"sample\":250,"
                        "\"label\":\"N\"}\n" +
                        lines);
  return vigil::eval::AlarmActiveAtEnd(in, "test", alarm, 300, 16);
}

TEST(AlarmEval, ActiveInTheLastSixteenSeconds) {
  EXPECT_FALSE(
      Active(Line(250, "ASYSTOLE", "RAISED") + Line(283, "ASYSTOLE", "CLEARED"), "Asystole"));
  EXPECT_TRUE(
      Active(Line(250, "ASYSTOLE", "RAISED") + Line(285, "ASYSTOLE", "CLEARED"), "Asystole"));
  EXPECT_TRUE(Active(Line(299, "ASYSTOLE", "RAISED"), "Asystole"));  // still active
  EXPECT_TRUE(Active(Line(100, "ASYSTOLE", "RAISED"), "Asystole"));  // latched
  EXPECT_FALSE(Active(Line(299, "PAUSE", "RAISED"), "Asystole"));    // other condition
  EXPECT_TRUE(Active(Line(290, "EXTREME_BRADYCARDIA", "RAISED"), "Bradycardia"));
  EXPECT_TRUE(Active(Line(290, "TACHYCARDIA", "RAISED"), "Tachycardia"));
  EXPECT_FALSE(Active(Line(290, "TACHYCARDIA", "RAISED"), "Ventricular_Tachycardia"));
  EXPECT_TRUE(Active(Line(295, "VENTRICULAR_FIBRILLATION", "RAISED"), "Ventricular_Flutter_Fib"));
  EXPECT_THROW(Active("", "Apnea"), std::invalid_argument);
}

TEST(AlarmEval, ScoreIsTheChallengeFormula) {
  vigil::eval::AlarmCounts c{.tp = 10, .fp = 4, .fn = 2, .tn = 20};
  EXPECT_NEAR(c.score(), 100.0 * 30 / (30 + 4 + 10), 1e-9);
  EXPECT_NEAR(c.tpr(), 100.0 * 10 / 12, 1e-9);
  EXPECT_NEAR(c.tnr(), 100.0 * 20 / 24, 1e-9);
}

TEST(AlarmEval, ReplaysWithoutTheOriginLineAreRefusedWithTheFileNamed) {
  std::istringstream in(Line(290, "ASYSTOLE", "RAISED"));
  try {
    vigil::eval::AlarmActiveAtEnd(in, "old.jsonl", "Asystole", 300, 16);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("old.jsonl:1"), std::string::npos) << e.what();
  }
}

}  // namespace
