// The demo's console: alert lines carry priority, patient, condition, state and explanation;
// the truth scoring calls an injected event detected only when a matching alert is near it.
#include "pipeline/console/alert_console.h"

#include <gtest/gtest.h>

namespace {

using namespace vigil;

constexpr int64_t kT0 = 1'767'225'600'000'000;

v1::Alert Alert(const std::string& patient, v1::Condition c, double onset_s) {
  v1::Alert a;
  a.set_alert_id("0123456789abcdef");
  a.set_patient_id(patient);
  a.set_condition(c);
  a.set_priority(v1::PRIORITY_HIGH);
  a.set_state(v1::ALERT_STATE_RAISED);
  a.set_onset_time_us(kT0 + static_cast<int64_t>(onset_s * 1e6));
  a.set_event_time_us(a.onset_time_us());
  a.set_summary("Ventricular tachycardia for 6 s");
  return a;
}

TEST(AlertConsole, LineCarriesWhatAClinicianNeeds) {
  const auto line = console::FormatAlert(
      Alert("sim-00003", v1::CONDITION_VENTRICULAR_TACHYCARDIA, 5), false, "UTC");
  EXPECT_NE(line.find("00:00:05"), std::string::npos) << line;
  EXPECT_NE(line.find("HIGH"), std::string::npos);
  EXPECT_NE(line.find("sim-00003"), std::string::npos);
  EXPECT_NE(line.find("Ventricular tachycardia"), std::string::npos);
  EXPECT_NE(line.find("RAISED"), std::string::npos);
  EXPECT_EQ(line.find("\033["), std::string::npos) << "no colour codes when not asked";
  EXPECT_NE(console::FormatAlert(Alert("p", v1::CONDITION_PAUSE, 0), true, "UTC").find("\033["),
            std::string::npos);
}

TEST(AlertConsole, TruthScoringMatchesByPatientConditionAndTime) {
  std::vector<console::TruthRecord> truth = {
      {"a", "VT", kT0 + 100'000'000, kT0 + 106'000'000},     // alert 2 s after: detected
      {"b", "VT", kT0 + 100'000'000, kT0 + 106'000'000},     // alert for another patient only
      {"a", "PAUSE", kT0 + 500'000'000, kT0 + 504'000'000},  // alert far too late: missed
      {"a", "PVC", kT0 + 10'000'000, kT0 + 10'500'000},      // never alarmed by design
      {"a", "APNEA", kT0 + 200'000'000, kT0 + 215'000'000},
  };
  std::vector<v1::Alert> alerts = {Alert("a", v1::CONDITION_VENTRICULAR_TACHYCARDIA, 102),
                                   Alert("a", v1::CONDITION_PAUSE, 800)};
  v1::Aggregate minute;
  minute.set_patient_id("a");
  minute.set_window(v1::WINDOW_KIND_MINUTE);
  minute.set_window_start_us(kT0 + 180'000'000);
  minute.set_window_end_us(kT0 + 240'000'000);
  minute.mutable_respiratory()->set_apneas(1);
  const auto d = console::ScoreAgainstTruth(truth, alerts, {minute});
  ASSERT_EQ(d.size(), 5u);
  EXPECT_EQ(d[0].outcome, console::Detection::Outcome::kDetected);
  EXPECT_EQ(d[1].outcome, console::Detection::Outcome::kMissed);
  EXPECT_EQ(d[2].outcome, console::Detection::Outcome::kMissed);
  EXPECT_EQ(d[3].outcome, console::Detection::Outcome::kNotAlarmed);
  EXPECT_EQ(d[4].outcome, console::Detection::Outcome::kDetected);
}

// A cleared alert covers only its own time: its RAISED record (no end yet) must not make it
// "detect" an event that comes after its CLEARED record.
TEST(AlertConsole, ClearedAlertDoesNotDetectLaterEvents) {
  std::vector<console::TruthRecord> truth = {
      {"a", "NOISE", kT0 + 3000'000'000LL, kT0 + 3010'000'000LL},  // long after the clearing
      {"a", "NOISE", kT0 + 20'000'000, kT0 + 30'000'000},          // while it was active
  };
  auto raised = Alert("a", v1::CONDITION_ECG_NOISE, 10);
  auto cleared = raised;
  cleared.set_state(v1::ALERT_STATE_CLEARED);
  cleared.set_end_time_us(kT0 + 60'000'000);
  const auto d = console::ScoreAgainstTruth(truth, {raised, cleared}, {});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].outcome, console::Detection::Outcome::kMissed) << d[0].how;
  EXPECT_EQ(d[1].outcome, console::Detection::Outcome::kDetected) << d[1].how;
}

// Technical artefacts shorter than their alert rule's minimum (10 s for ECG noise) are correctly
// not alarmed; a longer one without an alert is a miss.
TEST(AlertConsole, NoiseShorterThanTheAlertMinimumIsNotAlarmedByDesign) {
  std::vector<console::TruthRecord> truth = {
      {"a", "NOISE", kT0 + 100'000'000, kT0 + 106'000'000},
      {"a", "NOISE", kT0 + 900'000'000, kT0 + 925'000'000},
  };
  const auto d = console::ScoreAgainstTruth(truth, {}, {});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].outcome, console::Detection::Outcome::kNotAlarmed) << d[0].how;
  EXPECT_NE(d[0].how.find("10 s"), std::string::npos) << d[0].how;
  EXPECT_EQ(d[1].outcome, console::Detection::Outcome::kMissed) << d[1].how;
}

}  // namespace
