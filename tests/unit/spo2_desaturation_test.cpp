// spo2.desaturation on constructed SpO2 traces just under and over each rule: ODI3 / ODI4 drops
// (3 % and 4 % below the 120-s median baseline), the 10-s minimum duration, T90 (< 90 %), mean
// and minimum, invalid samples, and the noon-to-noon night.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "operators/spo2/desaturation.h"

namespace vigil::ops {
namespace {

// 2026-01-15 00:00 UTC = 01:00 in Copenhagen: inside the night of 2026-01-14.
constexpr TimeUs kT0 = 1'768'435'200'000'000;

struct Trace {
  std::vector<float> values;  // 1 Hz from kT0
  void Hold(double v, int seconds) {
    values.insert(values.end(), static_cast<size_t>(seconds), static_cast<float>(v));
  }
};

// The nightly measures of `trace`, by name.
std::map<std::string, double> Night(const Trace& trace, const Parameters& parameters = {}) {
  const auto op = Desaturation::Spec().make(parameters, {});
  auto state = op->MakeState();
  Events out;
  Chunk chunk;
  chunk.first_sample_us = kT0;
  chunk.sample_rate_hz = 1;
  chunk.values = trace.values;
  op->Process(*state, Signal::kSpo2, chunk, out);
  op->Finish(*state, out);
  std::map<std::string, double> measures;
  for (const auto& e : out) {
    if (const auto* m = std::get_if<Measurement>(&e)) measures[m->name] = m->value;
  }
  return measures;
}

// 5 min at 96 %, then a dip to 96 - drop for `seconds` (samples spanning that long), then 96 %.
Trace Dip(double drop, int seconds) {
  Trace t;
  t.Hold(96, 300);
  t.Hold(96 - drop, seconds + 1);
  t.Hold(96, 300);
  return t;
}

TEST(Spo2Desaturation, ThreePercentCountsForOdi3NotOdi4) {
  const auto m = Night(Dip(3.0, 10));
  const double hours = m.at("spo2_hours");
  ASSERT_GT(hours, 0);
  EXPECT_NEAR(m.at("spo2_odi3_per_h") * hours, 1, 1e-9);
  EXPECT_NEAR(m.at("spo2_odi4_per_h") * hours, 0, 1e-9);
}

TEST(Spo2Desaturation, JustUnderThreePercentCountsForNeither) {
  const auto m = Night(Dip(2.9, 30));
  EXPECT_EQ(m.at("spo2_odi3_per_h"), 0);
  EXPECT_EQ(m.at("spo2_odi4_per_h"), 0);
}

TEST(Spo2Desaturation, FourPercentCountsForBoth) {
  const auto m = Night(Dip(4.0, 10));
  const double hours = m.at("spo2_hours");
  EXPECT_NEAR(m.at("spo2_odi3_per_h") * hours, 1, 1e-9);
  EXPECT_NEAR(m.at("spo2_odi4_per_h") * hours, 1, 1e-9);
}

TEST(Spo2Desaturation, NineSecondsIsNoDesaturation) {
  EXPECT_EQ(Night(Dip(5, 9)).at("spo2_odi3_per_h"), 0);
  EXPECT_GT(Night(Dip(5, 10)).at("spo2_odi3_per_h"), 0);
  // The minimum duration is a parameter.
  EXPECT_GT(Night(Dip(5, 9), {{"min_event_s", 5}}).at("spo2_odi3_per_h"), 0);
}

TEST(Spo2Desaturation, RepetitiveDipsAreEachCountedAgainstAStableBaseline) {
  Trace t;
  t.Hold(96, 300);
  for (int i = 0; i < 20; ++i) {  // 20 cycles of 20 s at 91 % and 40 s at 96 %
    t.Hold(91, 20);
    t.Hold(96, 40);
  }
  const auto m = Night(t);
  EXPECT_NEAR(m.at("spo2_odi4_per_h") * m.at("spo2_hours"), 20, 1e-9);
  EXPECT_NEAR(m.at("spo2_odi3_per_h") * m.at("spo2_hours"), 20, 1e-9);
}

TEST(Spo2Desaturation, NoBaselineNoDesaturation) {
  // One reading of 99 % and then 95 %: no baseline yet, so no 4 % desaturation.
  Trace t;
  t.Hold(99, 1);
  t.Hold(95, 60);
  EXPECT_EQ(Night(t).at("spo2_odi4_per_h"), 0);
}

TEST(Spo2Desaturation, AProbeOffEndsADesaturation) {
  // 5 s low, then the probe is off for 40 s (more than max_gap_s), then 8 s low: two pieces
  // of under 10 s, not one desaturation of 53 s.
  Trace t;
  t.Hold(96, 300);
  t.Hold(91, 5);
  t.Hold(0, 40);
  t.Hold(91, 8);
  t.Hold(96, 100);
  EXPECT_EQ(Night(t).at("spo2_odi3_per_h"), 0);
}

TEST(Spo2Desaturation, T90CountsTimeBelowNinetyOnly) {
  Trace below;
  below.Hold(95, 60);
  below.Hold(89.9, 120);
  below.Hold(95, 61);
  auto m = Night(below);
  EXPECT_NEAR(m.at("spo2_t90_min"), 2, 1e-9);
  EXPECT_NEAR(m.at("spo2_t90_pct"), 50, 1e-9);
  Trace at;
  at.Hold(95, 60);
  at.Hold(90.0, 120);
  at.Hold(95, 61);
  EXPECT_EQ(Night(at).at("spo2_t90_min"), 0);
}

TEST(Spo2Desaturation, MeanAndMinimumOfValidSamplesOnly) {
  Trace t;
  t.Hold(94, 100);
  t.Hold(0, 50);  // probe off: the oximeter sends 0
  t.values.push_back(std::nanf(""));
  t.Hold(98, 101);
  const auto m = Night(t);
  EXPECT_NEAR(m.at("spo2_min_pct"), 94, 1e-6);
  // 99 s at 94 %, the last 94 % sample bridging the 51-s hole capped at max_gap_s (30 s), 100 s at
  // 98 %.
  EXPECT_NEAR(m.at("spo2_mean_pct"), (94.0 * 129 + 98.0 * 100) / 229, 1e-9);
  EXPECT_NEAR(m.at("spo2_hours"), 229.0 / 3600, 1e-9);
}

TEST(Spo2Desaturation, NightsRunNoonToNoonInThePatientsZone) {
  const auto op = Desaturation::Spec().make({}, {});
  auto state = op->MakeState();
  Events out;
  std::vector<float> values(3600, 95.0f);
  Chunk chunk;
  chunk.sample_rate_hz = 1;
  chunk.values = values;
  // 10:30-11:30 UTC = 11:30-12:30 in Copenhagen: across the noon that ends the night.
  chunk.first_sample_us = kT0 + FromSeconds(10.5 * 3600);
  op->Process(*state, Signal::kSpo2, chunk, out);
  op->Finish(*state, out);
  int hours_values = 0;
  for (const auto& e : out) {
    if (const auto* m = std::get_if<Measurement>(&e); m && m->name == "spo2_hours") {
      ++hours_values;
      EXPECT_NEAR(m->value, 0.5, 1.0 / 3600 + 1e-9);
    }
  }
  EXPECT_EQ(hours_values, 2);
}

}  // namespace
}  // namespace vigil::ops
