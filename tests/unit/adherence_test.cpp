// Adherence: therapy days across DST in both zones, the 5-minute session rule, the 30-day
// compliance rule and the decline warning at their edges.
#include <date/tz.h>
#include <gtest/gtest.h>

#include "operators/adherence/adherence_rules.h"
#include "operators/adherence/therapy_day.h"
#include "operators/adherence/therapy_usage.h"
#include "operators/core/options.h"
#include "support/operator_harness.h"

namespace {

namespace ops = vigil::ops;
namespace vt = vigil::testing;

ops::TimeUs Local(const char* zone, int y, int m, int d, int hh, int mm, int ss = 0) {
  const auto local = date::local_days{date::year{y} / m / d} + std::chrono::hours(hh) +
                     std::chrono::minutes(mm) + std::chrono::seconds(ss);
  const auto sys = date::locate_zone(zone)->to_sys(local, date::choose::earliest);
  return std::chrono::duration_cast<std::chrono::microseconds>(sys.time_since_epoch()).count();
}

// Pressure at 1 Hz: `cm_h2o` from `from` for `seconds`.
vt::Stream Pressure(ops::TimeUs from, int seconds, float cm_h2o = 8) {
  return vt::Stream{ops::Signal::kAirwayPressure, from, 1.0,
                    std::vector<float>(static_cast<size_t>(seconds), cm_h2o)};
}

std::vector<ops::TherapyDay> Days(const std::string& zone, const std::vector<vt::Stream>& s) {
  ops::TherapyUsageOptions o;
  o.time_zone = zone;
  const auto op = ops::TherapyUsage::Make(o);
  auto state = op->MakeState();
  return vt::Only<ops::TherapyDay>(vt::Run(*op, *state, s, 60));
}

class DstNights : public ::testing::TestWithParam<const char*> {};

TEST_P(DstNights, SpringNightIs23HoursAndAutumnNight25) {
  const char* zone = GetParam();
  const auto* z = date::locate_zone(zone);
  const auto spring = ops::TherapyDayAt(Local(zone, 2024, 3, 31, 1, 0), z);
  EXPECT_EQ(spring.date, "2024-03-30");
  EXPECT_DOUBLE_EQ(spring.hours(), 23);
  const auto autumn = ops::TherapyDayAt(Local(zone, 2024, 10, 27, 4, 0), z);
  EXPECT_EQ(autumn.date, "2024-10-26");
  EXPECT_DOUBLE_EQ(autumn.hours(), 25);
  const auto ordinary = ops::TherapyDayAt(Local(zone, 2024, 6, 2, 11, 59), z);
  EXPECT_EQ(ordinary.date, "2024-06-01");  // before noon: the previous day's night
  EXPECT_DOUBLE_EQ(ordinary.hours(), 24);
  EXPECT_EQ(ops::TherapyDayAt(Local(zone, 2024, 6, 2, 12, 0), z).date, "2024-06-02");
  EXPECT_EQ(ops::NextTherapyDay(spring, z).start_us, spring.end_us);
}

TEST_P(DstNights, UsageAcrossTheClockChangeCountsRealTime) {
  const char* zone = GetParam();
  // 22:00 to 06:00 on the wall clock: 7 h of therapy in spring, 9 h in autumn.
  const ops::TimeUs s1 = Local(zone, 2024, 3, 30, 22, 0), e1 = Local(zone, 2024, 3, 31, 6, 0);
  auto days = Days(zone, {Pressure(s1, static_cast<int>((e1 - s1) / 1'000'000))});
  ASSERT_EQ(days.size(), 1u);
  EXPECT_EQ(days[0].date, "2024-03-30");
  EXPECT_NEAR(days[0].usage_min, 420, 0.05);
  EXPECT_EQ(days[0].end_us - days[0].start_us, 23LL * 3600 * 1'000'000);
  const ops::TimeUs s2 = Local(zone, 2024, 10, 26, 22, 0), e2 = Local(zone, 2024, 10, 27, 6, 0);
  days = Days(zone, {Pressure(s2, static_cast<int>((e2 - s2) / 1'000'000))});
  ASSERT_EQ(days.size(), 1u);
  EXPECT_EQ(days[0].date, "2024-10-26");
  EXPECT_NEAR(days[0].usage_min, 540, 0.05);
  EXPECT_EQ(days[0].end_us - days[0].start_us, 25LL * 3600 * 1'000'000);
}

INSTANTIATE_TEST_SUITE_P(Zones, DstNights, ::testing::Values("Europe/Copenhagen", "Europe/Oslo"));

TEST(TherapyUsage, SessionsShorterThanFiveMinutesAreIgnored) {
  const char* zone = "Europe/Copenhagen";
  const ops::TimeUs t = Local(zone, 2024, 5, 10, 23, 0);
  // 299 s (just under 5 min) and, an hour later, a 301 s session; then a 2-hour session.
  const auto days = Days(zone, {Pressure(t, 299), Pressure(t + 3600'000'000LL, 301),
                                Pressure(t + 7200'000'000LL, 7200)});
  ASSERT_EQ(days.size(), 1u);
  EXPECT_EQ(days[0].sessions, 2);
  EXPECT_NEAR(days[0].usage_min, (301 + 7200) / 60.0, 0.05);
  EXPECT_EQ(days[0].first_mask_on_us, t + 3600'000'000LL);
}

TEST(TherapyUsage, LowPressureIsMaskOffAndASessionAcrossNoonIsSplit) {
  const char* zone = "Europe/Oslo";
  const ops::TimeUs t = Local(zone, 2024, 5, 10, 11, 0);  // 11:00 to 13:00, one session
  const auto days = Days(zone, {Pressure(t, 7200), Pressure(t + 7200'000'000LL, 600, 0.5f)});
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].date, "2024-05-09");
  EXPECT_NEAR(days[0].usage_min, 60, 0.05);
  EXPECT_EQ(days[1].date, "2024-05-10");
  EXPECT_NEAR(days[1].usage_min, 60, 0.05);
}

TEST(TherapyUsage, DeviceSessionEventsAsSource) {
  ops::TherapyUsageOptions o;
  o.session_source = 1;
  const auto op = ops::TherapyUsage::Make(o);
  auto state = op->MakeState();
  const ops::TimeUs t = Local("Europe/Copenhagen", 2024, 5, 10, 23, 0);
  ops::Events out;
  ops::DeviceEventView start{ops::DeviceEventView::Type::kSessionStart, t};
  ops::DeviceEventView stop{ops::DeviceEventView::Type::kSessionStop, t + 5400'000'000LL};
  op->OnDeviceEvent(*state, start, out);
  op->OnDeviceEvent(*state, stop, out);
  op->AdvanceTo(*state, t + 86400'000'000LL, out);
  const auto days = vt::Only<ops::TherapyDay>(out);
  ASSERT_EQ(days.size(), 1u);
  EXPECT_NEAR(days[0].usage_min, 90, 1e-9);
}

// The source each closed day's usage came from (Measurement "usage_session_source").
std::vector<double> Sources(const ops::Events& out) {
  std::vector<double> v;
  for (const auto& m : vt::Only<ops::Measurement>(out)) {
    if (m.name == "usage_session_source") v.push_back(m.value);
  }
  return v;
}

TEST(TherapyUsage, DefaultUsesSessionEventsOfADeviceWithoutPressure) {
  // A device that reports session start/stop and streams no pressure: by default (auto) its
  // nights count; with signals only (0) they would not exist.
  const auto op = ops::TherapyUsage::Make({});
  EXPECT_EQ(op->options().session_source, -1);
  auto state = op->MakeState();
  const ops::TimeUs t = Local("Europe/Copenhagen", 2024, 5, 10, 23, 0);
  ops::Events out;
  op->OnDeviceEvent(*state, {ops::DeviceEventView::Type::kSessionStart, t}, out);
  op->OnDeviceEvent(*state, {ops::DeviceEventView::Type::kSessionStop, t + 7200'000'000LL}, out);
  // The state moves to another instance half-way through the day (the chosen source with it).
  auto moved = op->MakeState();
  moved->Restore(state->Snapshot());
  op->AdvanceTo(*moved, t + 86400'000'000LL, out);
  const auto days = vt::Only<ops::TherapyDay>(out);
  ASSERT_EQ(days.size(), 1u);
  EXPECT_NEAR(days[0].usage_min, 120, 1e-9);
  EXPECT_EQ(Sources(out), std::vector<double>{1.0});

  ops::TherapyUsageOptions signals_only;
  signals_only.session_source = 0;
  const auto op0 = ops::TherapyUsage::Make(signals_only);
  auto state0 = op0->MakeState();
  ops::Events out0;
  op0->OnDeviceEvent(*state0, {ops::DeviceEventView::Type::kSessionStart, t}, out0);
  op0->OnDeviceEvent(*state0, {ops::DeviceEventView::Type::kSessionStop, t + 7200'000'000LL}, out0);
  op0->AdvanceTo(*state0, t + 86400'000'000LL, out0);
  EXPECT_TRUE(vt::Only<ops::TherapyDay>(out0).empty());
}

TEST(TherapyUsage, DefaultMeasuresByPressureWhenTheDeviceStreamsIt) {
  // Session events say 23:00-01:00, pressure says 23:10-00:40: a device that streams pressure is
  // measured by it. The next night has only session events: they count.
  const auto op = ops::TherapyUsage::Make({});
  auto state = op->MakeState();
  const ops::TimeUs t = Local("Europe/Copenhagen", 2024, 5, 10, 23, 0);
  const ops::TimeUs next = t + 86400'000'000LL;
  ops::Events out;
  op->OnDeviceEvent(*state, {ops::DeviceEventView::Type::kSessionStart, t}, out);
  const auto p = vt::Run(*op, *state, {Pressure(t + 600'000'000LL, 5400)}, 60, false);
  out.insert(out.end(), p.begin(), p.end());
  op->OnDeviceEvent(*state, {ops::DeviceEventView::Type::kSessionStop, t + 7200'000'000LL}, out);
  op->OnDeviceEvent(*state, {ops::DeviceEventView::Type::kSessionStart, next}, out);
  op->OnDeviceEvent(*state, {ops::DeviceEventView::Type::kSessionStop, next + 3600'000'000LL}, out);
  op->Finish(*state, out);
  const auto days = vt::Only<ops::TherapyDay>(out);
  ASSERT_EQ(days.size(), 2u);
  EXPECT_NEAR(days[0].usage_min, 90, 1.0 / 60);
  EXPECT_NEAR(days[1].usage_min, 60, 1e-9);
  EXPECT_EQ(Sources(out), (std::vector<double>{0.0, 1.0}));
}

std::vector<double> Nights(std::initializer_list<std::pair<int, double>> runs) {
  std::vector<double> v;
  for (const auto& [n, h] : runs) v.insert(v.end(), static_cast<size_t>(n), h);
  return v;
}

TEST(AdherenceRules, ComplianceEdges) {
  const ops::AdherenceRules r;
  EXPECT_TRUE(ops::EvaluateAdherence(Nights({{9, 0}, {21, 4.0}}), r).compliance_met);  // 70 %
  EXPECT_FALSE(ops::EvaluateAdherence(Nights({{10, 0}, {20, 4.0}}), r).compliance_met);
  EXPECT_FALSE(ops::EvaluateAdherence(Nights({{9, 0}, {21, 3.99}}), r).compliance_met);
  // Only the last 30 nights count.
  EXPECT_FALSE(ops::EvaluateAdherence(Nights({{21, 8}, {30, 0}}), r).compliance_met);
  // 21 used nights met already after 21 days (CMS: any 30 consecutive days).
  const auto early = ops::EvaluateAdherence(Nights({{21, 5}}), r);
  EXPECT_TRUE(early.compliance_met);
  EXPECT_EQ(early.nights, 21);
}

TEST(AdherenceRules, DeclineEdges) {
  const ops::AdherenceRules r;
  EXPECT_FALSE(ops::EvaluateAdherence(Nights({{7, 4.0}}), r).decline);        // not < 4 h
  const auto low = ops::EvaluateAdherence(Nights({{6, 4.0}, {1, 3.93}}), r);  // mean 3.99
  EXPECT_TRUE(low.decline);
  EXPECT_NE(low.decline_reason.find("< 4 h"), std::string::npos);
  const auto drop = ops::EvaluateAdherence(Nights({{30, 6.0}, {7, 4.5}}), r);  // 1.5 h below
  EXPECT_TRUE(drop.decline);
  EXPECT_NE(drop.decline_reason.find("1.5 h below"), std::string::npos);
  EXPECT_FALSE(ops::EvaluateAdherence(Nights({{30, 6.0}, {7, 4.51}}), r).decline);
  EXPECT_FALSE(ops::EvaluateAdherence(Nights({{6, 1.0}}), r).decline);  // fewer than 7 nights
}

TEST(AdherenceRules, ScoreIsDocumentedFormula) {
  const ops::AdherenceRules r;
  EXPECT_DOUBLE_EQ(ops::EvaluateAdherence(Nights({{30, 7.0}}), r).score, 100);
  EXPECT_DOUBLE_EQ(ops::EvaluateAdherence(Nights({{30, 0.0}}), r).score, 0);
  // 15 nights at 4 h, 15 at 0: 60 * 0.5 + 40 * 2 / 7
  EXPECT_NEAR(ops::EvaluateAdherence(Nights({{15, 0}, {15, 4}}), r).score, 30 + 80.0 / 7, 1e-9);
}

TEST(TherapyUsage, DeclineAndNonComplianceEpisodes) {
  const char* zone = "Europe/Copenhagen";
  std::vector<vt::Stream> s;
  // 30 nights of 6 h, then 7 nights of 2 h.
  for (int n = 0; n < 37; ++n) {
    const ops::TimeUs t = Local(zone, 2024, 1, 1, 22, 0) + n * 86400LL * 1'000'000;
    s.push_back(Pressure(t, n < 30 ? 6 * 3600 : 2 * 3600));
  }
  ops::TherapyUsageOptions o;
  const auto op = ops::TherapyUsage::Make(o);
  auto state = op->MakeState();
  const auto events = vt::Run(*op, *state, s, 600);
  EXPECT_EQ(vt::Only<ops::TherapyDay>(events).size(), 37u);
  const auto decline =
      vt::EpisodesOf(events, ops::EpisodeKind::kAdherenceDecline, ops::Episode::Phase::kOpened);
  ASSERT_EQ(decline.size(), 1u);
  // 30 x 6 h then 2 h nights: the 7-night mean falls below 4 h with the fourth short night
  // (6+6+6+2+2+2+2)/7 = 3.71 h; the "1.5 h below" branch needs 37 nights, so "< 4 h" fires.
  EXPECT_EQ(decline[0].start_us,
            ops::TherapyDayAt(Local(zone, 2024, 2, 3, 22, 0), date::locate_zone(zone)).start_us);
  EXPECT_TRUE(vt::EpisodesOf(events, ops::EpisodeKind::kNonCompliance, ops::Episode::Phase::kOpened)
                  .empty());
}

TEST(TherapyUsage, OptionsAreValidated) {
  ops::TherapyUsageOptions o;
  o.time_zone = "Europe/Atlantis";
  try {
    ops::TherapyUsage::Make(o);
    FAIL();
  } catch (const ops::OptionError& e) {
    EXPECT_EQ(e.field(), "adherence.usage.time_zone");
    EXPECT_NE(std::string(e.what()).find("Europe/Atlantis"), std::string::npos);
  }
  o = {};
  o.min_session_min = -1;
  EXPECT_THROW(ops::TherapyUsage::Make(o), ops::OptionError);
  EXPECT_THROW(ops::TherapyUsageOptions::FromParameters({{"min_sesion_min", 5}}), ops::OptionError);
}

}  // namespace
