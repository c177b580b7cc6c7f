// Snapshot/restore equivalence for the respiratory, CO2 and adherence operators: a patient's
// state moved to another instance half-way (snapshot -> bytes -> restore into a fresh state)
// must give exactly the events of an uninterrupted run, whatever the chunking.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "operators/adherence/therapy_usage.h"
#include "operators/co2/hypoventilation.h"
#include "operators/respiration/breath_segmentation.h"
#include "operators/respiration/leak.h"
#include "operators/respiration/respiratory_events.h"
#include "support/operator_harness.h"

namespace {

namespace ops = vigil::ops;
namespace vt = vigil::testing;
constexpr ops::TimeUs kT0 = 1704916800LL * ops::kMicrosPerSecond;  // 2024-01-10 21:00 CET

std::vector<vt::Stream> Signals() {
  vt::Stream flow{ops::Signal::kFlow, kT0, 25, {}};
  vt::Stream pressure{ops::Signal::kAirwayPressure, kT0, 25, {}};
  vt::Stream leak{ops::Signal::kLeak, kT0, 0.5, {}};
  vt::Stream spo2{ops::Signal::kSpo2, kT0, 1, {}};
  vt::Stream co2{ops::Signal::kTranscutaneousCo2, kT0, 1, {}};
  const int seconds = 3 * 3600;
  for (int i = 0; i < seconds * 25; ++i) {
    const double t = i / 25.0;
    const double cycle = std::fmod(t, 600);
    const double scale = cycle > 300 && cycle < 318 ? 0.03 : (cycle > 400 && cycle < 420 ? 0.4 : 1);
    flow.values.push_back(
        static_cast<float>(scale * 28 * std::sin(2 * std::numbers::pi * t / 4.2)));
    pressure.values.push_back(t < 7000 || t > 7300 ? 9.0f : 0.2f);
  }
  for (int s = 0; s < seconds; s += 2) leak.values.push_back(std::fmod(s, 900) < 40 ? 30.0f : 6.0f);
  for (int s = 0; s < seconds; ++s) {
    spo2.values.push_back(std::fmod(s, 600) > 310 && std::fmod(s, 600) < 340 ? 92.0f : 96.0f);
    co2.values.push_back(
        static_cast<float>(s < 600 ? 40 : (s < 5000 ? 57 : 45) + (s % 97 == 0 ? 30 : 0)));
  }
  return {flow, pressure, leak, spo2, co2};
}

// The streams before / from `split_us`.
std::pair<std::vector<vt::Stream>, std::vector<vt::Stream>> Split(
    const std::vector<vt::Stream>& all, ops::TimeUs split_us) {
  std::vector<vt::Stream> a, b;
  for (const auto& s : all) {
    const auto k =
        static_cast<size_t>(std::ceil(ops::ToSeconds(split_us - s.first_us) * s.rate_hz));
    vt::Stream x = s, y = s;
    x.values.assign(s.values.begin(), s.values.begin() + static_cast<std::ptrdiff_t>(k));
    y.values.assign(s.values.begin() + static_cast<std::ptrdiff_t>(k), s.values.end());
    y.first_us = ops::SampleTime(s.first_us, s.rate_hz, static_cast<int64_t>(k));
    a.push_back(x);
    b.push_back(y);
  }
  return {a, b};
}

void ExpectEquivalent(const ops::StreamOperator& op) {
  SCOPED_TRACE(std::string(op.name()));
  const auto all = Signals();
  std::vector<vt::Stream> mine;
  for (const auto& s : all) {
    const auto in = op.inputs();
    if (std::find(in.begin(), in.end(), s.signal) != in.end()) mine.push_back(s);
  }
  auto whole = op.MakeState();
  const auto expected = vt::Describe(vt::Run(op, *whole, mine, 30));
  ASSERT_FALSE(expected.empty());
  for (const double at_s : {1234.5, 5421.0}) {
    const auto [first, second] = Split(mine, kT0 + ops::FromSeconds(at_s));
    auto before = op.MakeState();
    auto events = vt::Run(op, *before, first, 7, false);
    const std::string bytes = before->Snapshot();
    auto after = op.MakeState();
    after->Restore(bytes);
    EXPECT_EQ(after->Snapshot(), bytes);
    const auto rest = vt::Run(op, *after, second, 13);
    events.insert(events.end(), rest.begin(), rest.end());
    EXPECT_EQ(vt::Describe(events), expected) << "split at " << at_s;
  }
  // A truncated snapshot is rejected and leaves the state as it was.
  auto s = op.MakeState();
  const std::string fresh = s->Snapshot();
  EXPECT_THROW(s->Restore(std::string_view(fresh).substr(0, fresh.size() / 2)), ops::SnapshotError);
  EXPECT_EQ(s->Snapshot(), fresh);
}

TEST(RespiratorySnapshots, BreathSegmentation) {
  ExpectEquivalent(*ops::BreathSegmentation::Make({}));
}
TEST(RespiratorySnapshots, RespiratoryEvents) {
  ExpectEquivalent(*ops::RespiratoryEvents::Make({}));
}
TEST(RespiratorySnapshots, Leak) {
  ExpectEquivalent(*ops::LeakMonitor::Make({}));
}
TEST(RespiratorySnapshots, Hypoventilation) {
  ExpectEquivalent(*ops::Hypoventilation::Make({}));
}
TEST(RespiratorySnapshots, TherapyUsage) {
  ExpectEquivalent(*ops::TherapyUsage::Make({}));
}

}  // namespace
