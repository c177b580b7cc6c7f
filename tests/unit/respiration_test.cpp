// Breath segmentation, apnea/hypopnea rules (AASM with SpO2, ResMed convention without) and
// leak conditions on constructed flow signals whose answers are known.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "operators/core/options.h"
#include "operators/respiration/breath_segmentation.h"
#include "operators/respiration/leak.h"
#include "operators/respiration/respiratory_events.h"
#include "support/operator_harness.h"

namespace {

namespace ops = vigil::ops;
namespace vt = vigil::testing;
constexpr ops::TimeUs kT0 = 1700000000LL * ops::kMicrosPerSecond;
constexpr double kRate = 25;

// Sinusoidal breathing: `bpm`, peak flow `peak_lpm`, with `scale(t_s)` multiplying the amplitude.
vt::Stream Flow(double seconds, double bpm, double peak_lpm,
                const std::function<double(double)>& scale = nullptr, ops::TimeUs t0 = kT0) {
  vt::Stream s{ops::Signal::kFlow, t0, kRate, {}};
  const size_t n = static_cast<size_t>(seconds * kRate);
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / kRate;
    const double a = scale ? scale(t) : 1.0;
    s.values.push_back(
        static_cast<float>(a * peak_lpm * std::sin(2 * std::numbers::pi * bpm / 60 * t)));
  }
  return s;
}

TEST(BreathSegmentation, SinusoidalBreathing) {
  const auto op = ops::BreathSegmentation::Make({});
  auto state = op->MakeState();
  const auto breaths = vt::Only<ops::Breath>(vt::Run(*op, *state, {Flow(120, 15, 30)}));
  ASSERT_GE(breaths.size(), 27u);  // 30 cycles, the first and last are incomplete
  const double vt_ml = 30.0 * 4 / std::numbers::pi / 60 * 1000;  // integral of the positive half
  for (const auto& b : breaths) {
    EXPECT_NEAR(b.respiratory_rate_bpm, 15, 0.2);
    EXPECT_NEAR(b.tidal_volume_ml, vt_ml, 0.05 * vt_ml);
    EXPECT_NEAR(b.inspiratory_time_s, 2.0, 0.25);
    EXPECT_NEAR(b.expiratory_time_s, 2.0, 0.25);
    EXPECT_NEAR(b.peak_inspiratory_flow_lpm, 30, 1.5);
    EXPECT_NEAR(b.minute_ventilation_lpm, vt_ml * 15 / 1000, 0.6);
  }
}

TEST(BreathSegmentation, NoBreathsWhilePressureIsOffOrAcrossAGap) {
  const auto op = ops::BreathSegmentation::Make({});
  auto state = op->MakeState();
  vt::Stream p{ops::Signal::kAirwayPressure, kT0, kRate,
               std::vector<float>(static_cast<size_t>(60 * kRate), 0.3f)};
  EXPECT_TRUE(vt::Only<ops::Breath>(vt::Run(*op, *state, {p, Flow(60, 15, 30)}, 60)).empty());
  // Two recordings 10 minutes apart: no breath spans the gap.
  auto state2 = op->MakeState();
  const auto breaths = vt::Only<ops::Breath>(
      vt::Run(*op, *state2,
              {Flow(60, 15, 30), Flow(60, 15, 30, nullptr, kT0 + 660 * ops::kMicrosPerSecond)}));
  for (const auto& b : breaths) EXPECT_LT(b.end_us - b.start_us, 5 * ops::kMicrosPerSecond);
}

TEST(RespiratoryEvents, ApneaIsScoredWithItsTimes) {
  const auto op = ops::RespiratoryEvents::Make({});
  auto state = op->MakeState();
  // 3 min of breathing, 20 s of (almost) no flow, 2 min of breathing.
  const auto flow = Flow(320, 15, 30, [](double t) { return (t >= 180 && t < 200) ? 0.02 : 1.0; });
  const auto events = vt::Run(*op, *state, {flow});
  const auto apneas =
      vt::EpisodesOf(events, ops::EpisodeKind::kApnea, ops::Episode::Phase::kClosed);
  ASSERT_EQ(apneas.size(), 1u);
  EXPECT_NEAR(ops::ToSeconds(apneas[0].start_us - kT0), 180, 2.5);
  EXPECT_NEAR(ops::ToSeconds(apneas[0].end_us - apneas[0].start_us), 20, 3);
  EXPECT_NE(apneas[0].why.note.find("device convention"), std::string::npos);  // no SpO2
  EXPECT_TRUE(
      vt::EpisodesOf(events, ops::EpisodeKind::kHypopnea, ops::Episode::Phase::kClosed).empty());
}

TEST(RespiratoryEvents, ShortPauseIsNotAnApnea) {
  const auto op = ops::RespiratoryEvents::Make({});
  auto state = op->MakeState();
  const auto flow = Flow(320, 15, 30, [](double t) { return (t >= 180 && t < 186) ? 0.0 : 1.0; });
  const auto events = vt::Run(*op, *state, {flow});
  EXPECT_TRUE(
      vt::EpisodesOf(events, ops::EpisodeKind::kApnea, ops::Episode::Phase::kClosed).empty());
  EXPECT_TRUE(
      vt::EpisodesOf(events, ops::EpisodeKind::kHypopnea, ops::Episode::Phase::kClosed).empty());
}

TEST(RespiratoryEvents, DeviceHypopneaWithoutSpo2) {
  const auto op = ops::RespiratoryEvents::Make({});
  for (const auto& [level, expect] : {std::pair{0.4, true}, std::pair{0.6, false}}) {
    auto state = op->MakeState();
    const auto flow =
        Flow(330, 15, 30, [l = level](double t) { return (t >= 180 && t < 204) ? l : 1.0; });
    const auto events = vt::Run(*op, *state, {flow});
    const auto h =
        vt::EpisodesOf(events, ops::EpisodeKind::kHypopnea, ops::Episode::Phase::kClosed);
    ASSERT_EQ(h.size(), expect ? 1u : 0u) << level;
    if (expect) {
      EXPECT_NE(h[0].why.note.find("device convention"), std::string::npos);
      EXPECT_NEAR(ops::ToSeconds(h[0].start_us - kT0), 180, 4);
      // ResMed's rule times the 8-s moving average below 50 %: for a fall to 40 % that is the
      // 24 s less 8 x (1/2 - 1/6) s at each edge.
      EXPECT_NEAR(ops::ToSeconds(h[0].end_us - h[0].start_us), 24 - 16.0 / 3, 1.5);
    }
  }
}

TEST(RespiratoryEvents, NineSecondReductionIsNotAHypopnea) {
  // The moving averages' lags must not stretch an event: 9 s at 30 % is below the 10-s minimum.
  const auto op = ops::RespiratoryEvents::Make({});
  auto state = op->MakeState();
  const auto flow = Flow(330, 15, 30, [](double t) { return (t >= 180 && t < 189) ? 0.3 : 1.0; });
  const auto events = vt::Run(*op, *state, {flow});
  EXPECT_TRUE(
      vt::EpisodesOf(events, ops::EpisodeKind::kHypopnea, ops::Episode::Phase::kClosed).empty());
  EXPECT_TRUE(
      vt::EpisodesOf(events, ops::EpisodeKind::kApnea, ops::Episode::Phase::kClosed).empty());
}

TEST(RespiratoryEvents, WaxingWaningBreathingIsNotAHypopneaEveryCycle) {
  // Periodic breathing: amplitude swings 0.3..1.0 over 60-s cycles, never below half of the
  // ventilation the patient actually has for 10 s. A baseline taken only from the breaths
  // between dips (the waxing phases) would call every waning phase a hypopnea.
  const auto op = ops::RespiratoryEvents::Make({});
  auto state = op->MakeState();
  const auto flow = Flow(
      1200, 15, 30, [](double t) { return 0.65 + 0.35 * std::sin(2 * std::numbers::pi * t / 60); });
  const auto events = vt::Run(*op, *state, {flow});
  EXPECT_LE(
      vt::EpisodesOf(events, ops::EpisodeKind::kHypopnea, ops::Episode::Phase::kClosed).size(), 1u);
  EXPECT_TRUE(
      vt::EpisodesOf(events, ops::EpisodeKind::kApnea, ops::Episode::Phase::kClosed).empty());
}

TEST(RespiratoryEvents, NotScoredDuringLargeLeak) {
  const auto op = ops::RespiratoryEvents::Make({});
  const auto flow = Flow(330, 15, 30, [](double t) { return (t >= 180 && t < 204) ? 0.3 : 1.0; });
  for (const float leak_lpm : {40.0f, 6.0f}) {
    auto state = op->MakeState();
    vt::Stream leak{ops::Signal::kLeak, kT0, 0.5, {}};
    for (int t = 0; t < 330; t += 2) leak.values.push_back(t >= 170 && t < 210 ? leak_lpm : 4.0f);
    const auto events = vt::Run(*op, *state, {flow, leak});
    const auto h =
        vt::EpisodesOf(events, ops::EpisodeKind::kHypopnea, ops::Episode::Phase::kClosed);
    EXPECT_EQ(h.size(), leak_lpm > 24 ? 0u : 1u) << leak_lpm;
  }
}

TEST(RespiratoryEvents, AasmHypopneaNeedsTheDesaturation) {
  const auto op = ops::RespiratoryEvents::Make({});
  const auto flow = Flow(330, 15, 30, [](double t) { return (t >= 180 && t < 204) ? 0.6 : 1.0; });
  for (const auto& [nadir, expect] : {std::pair{93.0f, true}, std::pair{95.5f, false}}) {
    auto state = op->MakeState();
    vt::Stream spo2{ops::Signal::kSpo2, kT0, 1, {}};
    for (int t = 0; t < 330; ++t) spo2.values.push_back(t >= 195 && t < 225 ? nadir : 97.0f);
    const auto events = vt::Run(*op, *state, {flow, spo2});
    const auto h =
        vt::EpisodesOf(events, ops::EpisodeKind::kHypopnea, ops::Episode::Phase::kClosed);
    ASSERT_EQ(h.size(), expect ? 1u : 0u) << nadir;
    if (expect) {
      EXPECT_NE(h[0].why.note.find("AASM"), std::string::npos);
    }
  }
}

TEST(RespiratoryEvents, GapIsNotAnApneaAndAhiCountsTherapyTime) {
  const auto op = ops::RespiratoryEvents::Make({});
  auto state = op->MakeState();
  const auto events =
      vt::Run(*op, *state,
              {Flow(300, 15, 30), Flow(300, 15, 30, nullptr, kT0 + 330 * ops::kMicrosPerSecond)});
  EXPECT_TRUE(
      vt::EpisodesOf(events, ops::EpisodeKind::kApnea, ops::Episode::Phase::kClosed).empty());
  double hours = 0, ahi = -1;
  for (const auto& m : vt::Only<ops::Measurement>(events)) {
    if (m.name == "therapy_hours") hours = m.value;
    if (m.name == "ahi") ahi = m.value;
  }
  EXPECT_NEAR(hours, 600.0 / 3600, 1e-6);
  EXPECT_DOUBLE_EQ(ahi, 0);
}

TEST(LeakMonitor, LargeLeakNeedsMoreThan24LpmForTenSeconds) {
  const auto op = ops::LeakMonitor::Make({});
  for (const auto& [leak, seconds, expect] :
       {std::tuple{30.0f, 20, true}, std::tuple{24.0f, 60, false}, std::tuple{40.0f, 8, false}}) {
    auto state = op->MakeState();
    vt::Stream s{ops::Signal::kLeak, kT0, 0.5, {}};
    for (int t = 0; t < 200; t += 2) s.values.push_back(t >= 60 && t < 60 + seconds ? leak : 5.0f);
    const auto events = vt::Run(*op, *state, {s}, 20);
    EXPECT_EQ(
        vt::EpisodesOf(events, ops::EpisodeKind::kLargeLeak, ops::Episode::Phase::kOpened).size(),
        expect ? 1u : 0u)
        << leak << " " << seconds;
    EXPECT_EQ(vt::Only<ops::Measurement>(events).size(), 100u);
  }
}

TEST(LeakMonitor, DisconnectionFromAVeryLargeLeakOrOpenCircuit) {
  const auto op = ops::LeakMonitor::Make({});
  // Device leak of 100 L/min (>= 90) for 10 s: a disconnection (and a large leak).
  auto state = op->MakeState();
  vt::Stream s{ops::Signal::kLeak, kT0, 0.5, {}};
  for (int t = 0; t < 120; t += 2) s.values.push_back(t >= 40 && t < 50 ? 100.0f : 5.0f);
  auto events = vt::Run(*op, *state, {s}, 20);
  EXPECT_EQ(
      vt::EpisodesOf(events, ops::EpisodeKind::kDisconnection, ops::Episode::Phase::kOpened).size(),
      1u);
  EXPECT_EQ(
      vt::EpisodesOf(events, ops::EpisodeKind::kDisconnection, ops::Episode::Phase::kClosed).size(),
      1u);
  // 3 s of it is not (disconnect_min_s = 5 s).
  auto state2 = op->MakeState();
  vt::Stream s2{ops::Signal::kLeak, kT0, 0.5, {}};
  for (int t = 0; t < 120; t += 2) s2.values.push_back(t >= 40 && t < 44 ? 100.0f : 5.0f);
  events = vt::Run(*op, *state2, {s2}, 20);
  EXPECT_TRUE(vt::EpisodesOf(events, ops::EpisodeKind::kDisconnection, ops::Episode::Phase::kOpened)
                  .empty());
  // Without a device leak: pressure near 0 while the blower drives > 60 L/min into open air.
  auto state3 = op->MakeState();
  vt::Stream p{ops::Signal::kAirwayPressure, kT0, 25, std::vector<float>(25 * 300, 0.3f)};
  vt::Stream f{ops::Signal::kFlow, kT0, 25, std::vector<float>(25 * 300, 120.0f)};
  events = vt::Run(*op, *state3, {p, f}, 10);
  EXPECT_EQ(
      vt::EpisodesOf(events, ops::EpisodeKind::kDisconnection, ops::Episode::Phase::kOpened).size(),
      1u);
}

TEST(LeakMonitor, EstimatedFromTotalFlowMinusIntendedLeak) {
  ops::LeakOptions o;
  o.intended_leak_lpm = 20;
  const auto op = ops::LeakMonitor::Make(o);
  auto state = op->MakeState();
  auto flow = Flow(300, 15, 30);
  for (auto& v : flow.values) v += 32;  // vent 20 + unintentional 12 L/min
  const auto m = vt::Only<ops::Measurement>(vt::Run(*op, *state, {flow}));
  ASSERT_EQ(m.size(), 5u);  // one per 60-s window
  for (const auto& x : m) EXPECT_NEAR(x.value, 12, 0.5);
}

TEST(RespirationOptions, BadValuesNameTheField) {
  ops::RespiratoryEventOptions o;
  o.min_event_s = 2;
  try {
    ops::RespiratoryEvents::Make(o);
    FAIL();
  } catch (const ops::OptionError& e) {
    EXPECT_EQ(e.field(), "respiration.events.min_event_s");
  }
  ops::BreathSegmentationOptions b;
  b.max_breath_s = 0.5;
  EXPECT_THROW(ops::BreathSegmentation::Make(b), ops::OptionError);
  EXPECT_THROW(ops::LeakOptions::FromParameters({{"large_leak", 24}}), ops::OptionError);
  EXPECT_NO_THROW(ops::LeakOptions::FromParameters({{"large_leak_lpm", 30}}));
}

}  // namespace
