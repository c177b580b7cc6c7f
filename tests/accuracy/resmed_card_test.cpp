// The two ResMed SD cards (../shared/data/resmed): the reader against the files' known content,
// and Vigil's replay against the device's own figures (STR.edf, PLD, EVE). Criteria (issue 4):
// nightly usage within 5 min on >= 90 % of the days with data, AHI within 1 event/h on >= 80 %,
// median respiratory rate within 1/min and median tidal volume within 10 % of the device's.
#include "operators/io/resmed_card.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "operators/io/edf_file.h"
#include "pipeline/eval/card_compare.h"
#include "pipeline/replay/offline_replay.h"
#include "pipeline/replay/telemetry_source.h"
#include "support/test_support.h"

namespace {

namespace ops = vigil::ops;
namespace io = vigil::io;
using vigil::testing::SharedData;

TEST(ResmedCard, ReadsTheAirSenseCard) {
  const auto card = io::ReadResmedCard(SharedData("resmed/airsense10-autoset"));
  EXPECT_EQ(card.device_id, "23192691004");
  ASSERT_EQ(card.days.size(), 18u);
  EXPECT_EQ(card.days[0].date, "2023-08-21");
  EXPECT_DOUBLE_EQ(card.days[0].usage_min, 254);
  EXPECT_EQ(card.days[0].sessions, 4);
  EXPECT_NEAR(card.days[0].ahi, 0.2, 1e-6);
  EXPECT_NEAR(card.days[0].leak_p95_lpm, 15.6, 1e-4);  // 0.26 L/s
  EXPECT_EQ(card.datalog_days.size(), 10u);
  // First mask-on: STR says minute 731 after local noon = 00:11 CEST = 22:11 UTC.
  EXPECT_EQ(card.days[0].sessions_utc.at(0).first, 1692655860LL * ops::kMicrosPerSecond);
  // First BRP file: header 22.08.23 00.11.19 local (CEST) = 2023-08-21T22:11:19Z, flow at 25 Hz.
  const io::CardSeries* flow = nullptr;
  for (const auto& s : card.series) {
    if (s.signal == ops::Signal::kFlow) {
      flow = &s;
      break;
    }
  }
  ASSERT_NE(flow, nullptr);
  EXPECT_EQ(flow->first_sample_us, 1692655879LL * ops::kMicrosPerSecond);
  EXPECT_DOUBLE_EQ(flow->sample_rate_hz, 25);
  EXPECT_EQ(flow->values.size(), 39000u);
  EXPECT_NEAR(flow->values[0], 0.778 * 60, 0.01);  // L/s -> L/min
  // EVE: 9 apneas/hypopneas and one arousal; stamped at their end (start = onset - duration).
  EXPECT_EQ(card.scored_events.size(), 10u);
  EXPECT_EQ(card.scored_events[2].label, "Obstructive Apnea");
  EXPECT_EQ(card.scored_events[2].duration_s, 13);
  // Session events: a start and a stop per BRP file, and the day's settings at each start.
  int starts = 0, stops = 0, settings = 0;
  for (const auto& e : card.device_events) {
    starts += e.type == ops::DeviceEventView::Type::kSessionStart;
    stops += e.type == ops::DeviceEventView::Type::kSessionStop;
    if (e.type == ops::DeviceEventView::Type::kSettings) {
      ++settings;
      EXPECT_GE(e.epap_cm_h2o, 4);  // AutoSet limits: 4..20 cmH2O
      EXPECT_LE(e.epap_cm_h2o, e.ipap_cm_h2o);
      EXPECT_LE(e.ipap_cm_h2o, 20);
    }
  }
  EXPECT_EQ(starts, 41);
  EXPECT_EQ(stops, 41);
  EXPECT_EQ(settings, 41);
}

TEST(ResmedCard, TimeZoneIsAParameter) {
  io::ResmedCardOptions o;
  o.time_zone = "UTC";
  o.read_signals = false;
  const auto card = io::ReadResmedCard(SharedData("resmed/airsense10-autoset"), o);
  EXPECT_EQ(card.days[0].sessions_utc.at(0).first, (1692655860LL + 7200) * ops::kMicrosPerSecond);
  o.time_zone = "Europe/Nowhere";
  EXPECT_THROW(io::ReadResmedCard(SharedData("resmed/airsense10-autoset"), o), std::runtime_error);
}

TEST(ResmedCard, MalformedFileNamesFileAndField) {
  const auto dir = std::filesystem::temp_directory_path() / "vigil-bad-edf";
  std::filesystem::create_directories(dir);
  const auto path = dir / "STR.edf";
  {
    std::ofstream f(path, std::ios::binary);
    std::string header(256, ' ');
    header.replace(0, 1, "0");
    header.replace(168, 8, "21.08.23");
    header.replace(176, 8, "12.00.00");
    header.replace(184, 8, "512     ");
    header.replace(236, 8, "1       ");
    header.replace(244, 8, "abc     ");  // not a number
    header.replace(252, 4, "1   ");
    f << header << std::string(256, ' ');
  }
  try {
    io::ReadEdf(path);
    FAIL() << "no error";
  } catch (const io::EdfError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("STR.edf"), std::string::npos) << what;
    EXPECT_NE(what.find("duration of a data record"), std::string::npos) << what;
  }
  std::filesystem::remove_all(dir);
}

// Exactly what `vigil replay <card-dir>` does: the card as telemetry through PatientAnalysis,
// then `vigil eval-card`.
struct CardRun {
  io::ResmedCard card;
  vigil::eval::ReplayLines lines;
  vigil::eval::CardComparison c;
};

std::unique_ptr<CardRun> ReplayCard(const std::string& name) {
  const auto dir = SharedData("resmed/" + name);
  vigil::replay::SourceOptions so;
  auto source = vigil::replay::OpenRecording(dir, so);
  auto plan = vigil::analysis::AnalysisPlan::Make(vigil::replay::DefaultAnalysisConfig());
  vigil::replay::ReplayOutputOptions what;
  what.beats = false;
  std::stringstream jsonl;
  std::ostringstream diagnostics;
  const auto stats =
      vigil::replay::ReplayToJsonLines(*source, plan, "card", what, jsonl, diagnostics);
  EXPECT_EQ(stats.rejected_frames, 0u) << diagnostics.str();
  auto run = std::make_unique<CardRun>();
  run->lines = vigil::eval::ParseReplayLines(jsonl);
  io::ResmedCardOptions co;
  co.read_signals = false;
  run->card = io::ReadResmedCard(dir, co);
  run->c = vigil::eval::CompareCard(run->lines, run->card);  // points into *run
  return run;
}

class CardAccuracy : public ::testing::TestWithParam<const char*> {};

TEST_P(CardAccuracy, ReplayAgreesWithTheDevice) {
  const auto run = ReplayCard(GetParam());
  const auto& c = run->c;
  std::ostringstream table;
  vigil::eval::PrintComparison(c, table);
  SCOPED_TRACE(table.str());
  ASSERT_GT(c.days_with_data, 0);
  const double n = c.days_with_data;
  EXPECT_GE(c.usage_within_5min / n, 0.9);
  EXPECT_GE(c.rr_within_1 / n, 0.9);
  EXPECT_GE(c.vt_within_10pct / n, 0.9);
  // Issue 4's AHI target (within 1 event/h on >= 80 % of the days with data) holds over the two
  // cards together (AhiAgreementOverBothCards) and on the AirSense card alone (10 of 10 days),
  // not on the AirCurve's single night (3.9 vs 1.3 /h on 2025-02-02: flow reductions the device
  // does not score - every event it did score shows its 4 Hz forced-oscillation probe, the
  // extra ones are pauses after sighs and waning phases of periodic breathing). Per card the
  // test holds the worst-day error and the agreement with EVE as regression limits.
  double worst = 0;
  for (const auto& day : c.days) {
    if (!day.with_data || !day.device || !day.vigil || !day.vigil->ahi) continue;
    worst = std::max(worst, std::abs(*day.vigil->ahi - day.device->ahi));
  }
  const bool met = c.ahi_within_1 / n >= 0.8;
  std::cout << GetParam() << ": AHI within 1/h on " << c.ahi_within_1 << " of " << n
            << " days (target >= 80 %: " << (met ? "met" : "NOT MET") << "), worst day off by "
            << worst << " /h; EVE events " << c.eve_events << ", Vigil " << c.vigil_events
            << ", matched " << c.matched << "\n";
  const bool aircurve = std::string(GetParam()) == "aircurve10-vauto";
  EXPECT_LE(worst, aircurve ? 3.0 : 0.5) << "AHI error grew beyond its regression ceiling";
  // Measured: AirSense 3 of 9 EVE events found, 3 of 7 Vigil events matched; AirCurve 11 of 12
  // and 11 of 36 (its two hypopneas are stamped at their end and matched by end time).
  ASSERT_GT(c.eve_events, 0);
  ASSERT_GT(c.vigil_events, 0);
  EXPECT_GE(static_cast<double>(c.matched) / c.eve_events, aircurve ? 0.9 : 0.3) << "sensitivity";
  EXPECT_GE(static_cast<double>(c.matched) / c.vigil_events, aircurve ? 0.3 : 0.4)
      << "positive predictivity";
  if (!aircurve) {
    EXPECT_GE(c.ahi_within_1 / n, 0.8);
  }
}

INSTANTIATE_TEST_SUITE_P(Cards, CardAccuracy,
                         ::testing::Values("airsense10-autoset", "aircurve10-vauto"));

TEST(CardAccuracyOverall, AhiAgreementOverBothCards) {
  // Issue 4: AHI within 1 event/h of the device on >= 80 % of the days with data (10 + 1 here).
  int days = 0, within = 0;
  std::ostringstream tables;
  for (const char* name : {"airsense10-autoset", "aircurve10-vauto"}) {
    const auto run = ReplayCard(name);
    vigil::eval::PrintComparison(run->c, tables);
    days += run->c.days_with_data;
    within += run->c.ahi_within_1;
  }
  SCOPED_TRACE(tables.str());
  ASSERT_EQ(days, 11);
  std::cout << "AHI within 1/h of the device on " << within << " of " << days
            << " days with data over both cards\n";
  EXPECT_GE(static_cast<double>(within) / days, 0.8);
}

}  // namespace
