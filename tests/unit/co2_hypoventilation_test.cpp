// The constructed CO2 test table: no labelled capnography exists, so every case is a trace
// whose true answer follows from the AASM rule (CLINICAL.md) - just under and just over each
// threshold and duration, the baseline-rise branch, gaps, and noise spikes. Every case must pass.
#include <gtest/gtest.h>

#include <cmath>

#include "operators/co2/hypoventilation.h"
#include "operators/core/options.h"
#include "support/operator_harness.h"

namespace {

namespace ops = vigil::ops;
namespace vt = vigil::testing;
using ops::Episode;
using ops::EpisodeKind;
using vt::EpisodesOf;
using vt::Stream;

// 2024-01-10T20:00:00Z = 21:00 in Copenhagen: the whole trace lies inside one therapy night.
constexpr ops::TimeUs kT0 = 1704916800LL * ops::kMicrosPerSecond;

// A tcCO2 trace at 1 Hz built from segments; a segment with value NaN is a hole (no samples).
struct Segment {
  double value;
  int seconds;
};

std::vector<Stream> Trace(const std::vector<Segment>& segments,
                          const std::function<double(int, double)>& modify = nullptr) {
  std::vector<Stream> streams;
  ops::TimeUs t = kT0;
  Stream cur{ops::Signal::kTranscutaneousCo2, t, 1.0, {}};
  int k = 0;
  for (const auto& seg : segments) {
    if (std::isnan(seg.value)) {  // hole: close the current stream, jump the clock
      if (!cur.values.empty()) streams.push_back(cur);
      t += static_cast<ops::TimeUs>(seg.seconds) * ops::kMicrosPerSecond;
      cur = Stream{ops::Signal::kTranscutaneousCo2, t, 1.0, {}};
      continue;
    }
    for (int i = 0; i < seg.seconds; ++i, ++k) {
      const double v = modify ? modify(k, seg.value) : seg.value;
      cur.values.push_back(static_cast<float>(v));
      t += ops::kMicrosPerSecond;
    }
  }
  if (!cur.values.empty()) streams.push_back(cur);
  return streams;
}

struct Case {
  const char* name;
  double awake_baseline;  // -1: estimated from the first 10 minutes
  std::vector<Segment> segments;
  std::function<double(int, double)> modify;
  bool expect_hypoventilation;
  const char* branch;  // "branch A" / "branch B" when expected
  int expect_start_s;  // offset of the episode start from kT0, when expected
};

const double kHole = std::nan("");

std::vector<Case> Table() {
  const auto spike_every = [](int period, double to) {
    return [period, to](int k, double v) { return k % period == period - 1 ? to : v; };
  };
  const auto double_spike_every = [](int period, double to) {
    return [period, to](int k, double v) { return k % period >= period - 2 ? to : v; };
  };
  return {
      // Branch A: > 55 mmHg for >= 10 min (awake baseline 50, so branch B needs >= 60).
      {"A exactly 55.0 for 20 min is not > 55",
       50,
       {{40, 300}, {55.0, 1200}, {40, 300}},
       nullptr,
       false,
       "",
       0},
      {"A 55.1 for 599 s is just short",
       50,
       {{40, 300}, {55.1, 600}, {40, 300}},
       nullptr,
       false,
       "",
       0},
      {"A 55.1 for 600 s is enough",
       50,
       {{40, 300}, {55.1, 601}, {40, 300}},
       nullptr,
       true,
       "branch A",
       300},
      {"A 70 for 9 min is too short", 50, {{40, 300}, {70, 540}, {40, 300}}, nullptr, false, "", 0},
      {"A 56 split by a 120 s gap (signal lost) is two short runs",
       50,
       {{40, 300}, {56, 500}, {kHole, 120}, {56, 500}, {40, 60}},
       nullptr,
       false,
       "",
       0},
      {"A 56 with a 20 s hole (<= 30 s) is bridged",
       50,
       {{40, 300}, {56, 400}, {kHole, 20}, {56, 400}, {40, 60}},
       nullptr,
       true,
       "branch A",
       300},
      {"A single-sample spikes to 80 every 20 s are noise",
       50,
       {{40, 1800}},
       spike_every(20, 80),
       false,
       "",
       0},
      {"A double-sample spikes to 80 every 10 s are noise",
       50,
       {{40, 1800}},
       double_spike_every(10, 80),
       false,
       "",
       0},
      {"A 56 for 15 min with single-sample dips to 30 each minute",
       50,
       {{40, 300}, {56, 900}, {40, 300}},
       [](int k, double v) { return (k % 60 == 59 && v > 50) ? 30.0 : v; },
       true,
       "branch A",
       300},
      // Branch B: >= 10 above the awake baseline and > 50, for >= 10 min.
      {"B rise 10.5 to 48.5 is not > 50",
       38,
       {{38, 300}, {48.5, 900}, {38, 300}},
       nullptr,
       false,
       "",
       0},
      {"B 50.5 (rise 12.5) for 599 s is just short",
       38,
       {{38, 300}, {50.5, 600}, {38, 300}},
       nullptr,
       false,
       "",
       0},
      {"B 50.5 (rise 12.5) for 600 s is enough",
       38,
       {{38, 300}, {50.5, 601}, {38, 300}},
       nullptr,
       true,
       "branch B",
       300},
      {"B rise 9.9 to 51.9 is not enough",
       42,
       {{42, 300}, {51.9, 900}, {42, 300}},
       nullptr,
       false,
       "",
       0},
      {"B rise exactly 10.0 to 52.0 is enough",
       42,
       {{42, 300}, {52.0, 900}, {42, 300}},
       nullptr,
       true,
       "branch B",
       300},
      {"B estimated awake baseline 40, then 51 for 15 min",
       -1,
       {{40, 600}, {51, 900}, {40, 300}},
       nullptr,
       true,
       "branch B",
       600},
      {"B estimated awake baseline 45, then 51 (rise 6)",
       -1,
       {{45, 600}, {51, 900}, {45, 300}},
       nullptr,
       false,
       "",
       0},
      {"B 50.5 split by a 60 s gap is two short runs",
       38,
       {{38, 300}, {50.5, 480}, {kHole, 60}, {50.5, 420}, {38, 60}},
       nullptr,
       false,
       "",
       0},
      {"B spike to 75 at the start does not make the baseline",
       -1,
       {{40, 600}, {51, 900}},
       [](int k, double v) { return k == 10 ? 75.0 : v; },
       true,
       "branch B",
       600},
  };
}

TEST(Co2Hypoventilation, ConstructedTable) {
  for (const auto& c : Table()) {
    SCOPED_TRACE(c.name);
    ops::HypoventilationOptions o;
    o.awake_baseline_mm_hg = c.awake_baseline;
    const auto op = ops::Hypoventilation::Make(o);
    auto state = op->MakeState();
    const auto events = vt::Run(*op, *state, Trace(c.segments, c.modify), 60);
    const auto opened =
        EpisodesOf(events, EpisodeKind::kSleepHypoventilation, Episode::Phase::kOpened);
    const auto closed =
        EpisodesOf(events, EpisodeKind::kSleepHypoventilation, Episode::Phase::kClosed);
    EXPECT_EQ(opened.size(), c.expect_hypoventilation ? 1u : 0u);
    EXPECT_EQ(closed.size(), opened.size());
    if (c.expect_hypoventilation && opened.size() == 1) {
      EXPECT_NE(opened[0].why.note.find(c.branch), std::string::npos) << opened[0].why.note;
      EXPECT_EQ(opened[0].start_us, kT0 + c.expect_start_s * ops::kMicrosPerSecond);
      EXPECT_GT(closed[0].end_us, opened[0].start_us);
    }
  }
}

// A capnogram at 25 Hz: 4-s breaths, 2 s of inspiration near 0 mmHg, 2 s of expiration rising to
// a plateau. The end-tidal value per breath is the plateau.
Stream Capnogram(double plateau, int minutes, ops::TimeUs t0) {
  Stream s{ops::Signal::kCo2Waveform, t0, 25, {}};
  const int per_breath = 100;
  for (int b = 0; b < minutes * 15; ++b) {
    for (int i = 0; i < per_breath; ++i) {
      double v = 0.5;
      if (i >= 50) {
        const double x = (i - 50) / 10.0;  // 0.4 s upstroke, then plateau with a slight slope
        v = x < 1 ? plateau * x * 0.9 : plateau * (0.97 + 0.03 * (i - 60) / 39.0);
      }
      if (b % 7 == 3 && i == 75) v = 95;  // a single-sample artefact in some breaths
      s.values.push_back(static_cast<float>(v));
    }
  }
  return s;
}

TEST(Co2Hypoventilation, EndTidalIsThePlateauMaximum) {
  ops::EndTidalExtractor et;
  const Stream s = Capnogram(56, 2, kT0);
  std::vector<double> values;
  ops::Chunk c{s.first_us, s.rate_hz, std::span<const float>(s.values)};
  et.Process(c, [&](ops::TimeUs, double v) { values.push_back(v); });
  ASSERT_GE(values.size(), 29u);  // 30 breaths, the last may still be open
  for (double v : values) EXPECT_NEAR(v, 56, 0.05);
}

TEST(Co2Hypoventilation, CapnogramBranchA) {
  ops::HypoventilationOptions o;
  o.awake_baseline_mm_hg = 50;
  for (const auto& [plateau, expect] : {std::pair{56.0, true}, std::pair{54.0, false}}) {
    const auto op = ops::Hypoventilation::Make(o);
    auto state = op->MakeState();
    const auto events = vt::Run(*op, *state, {Capnogram(plateau, 12, kT0)}, 10);
    EXPECT_EQ(
        EpisodesOf(events, EpisodeKind::kSleepHypoventilation, Episode::Phase::kOpened).size(),
        expect ? 1u : 0u)
        << plateau;
  }
}

TEST(Co2Hypoventilation, ChronicHypercapniaOnTheNightlyMedian) {
  for (const auto& [value, expect] : {std::pair{53.0, true}, std::pair{52.5, false}}) {
    ops::HypoventilationOptions o;
    o.awake_baseline_mm_hg = 50;
    const auto op = ops::Hypoventilation::Make(o);
    auto state = op->MakeState();
    const auto events = vt::Run(*op, *state, Trace({{value, 3600}}), 60);
    EXPECT_EQ(EpisodesOf(events, EpisodeKind::kHypercapnia, Episode::Phase::kClosed).size(),
              expect ? 1u : 0u)
        << value;
    EXPECT_TRUE(
        EpisodesOf(events, EpisodeKind::kSleepHypoventilation, Episode::Phase::kOpened).empty());
  }
}

TEST(Co2Hypoventilation, NightlyMeasures) {
  ops::HypoventilationOptions o;
  o.awake_baseline_mm_hg = 50;
  const auto op = ops::Hypoventilation::Make(o);
  auto state = op->MakeState();
  const auto events = vt::Run(*op, *state, Trace({{56, 1200}, {52, 600}}), 60);
  std::map<std::string, double> m;
  for (const auto& x : vt::Only<ops::Measurement>(events)) m[x.name] = x.value;
  EXPECT_NEAR(m.at("co2_minutes_above_55"), 20, 0.1);
  EXPECT_NEAR(m.at("co2_minutes_above_50"), 30, 0.1);
  EXPECT_DOUBLE_EQ(m.at("co2_max_mm_hg"), 56);
  EXPECT_DOUBLE_EQ(m.at("co2_median_mm_hg"), 56);
}

TEST(Co2Hypoventilation, RisingSevenNightTrend) {
  for (const auto& [step, expect] : {std::pair{1.0, true}, std::pair{0.0, false}}) {
    ops::HypoventilationOptions o;
    o.awake_baseline_mm_hg = 60;
    const auto op = ops::Hypoventilation::Make(o);
    auto state = op->MakeState();
    std::vector<Stream> nights;
    for (int n = 0; n < 7; ++n) {
      Stream s{ops::Signal::kTranscutaneousCo2, kT0 + n * 86400LL * ops::kMicrosPerSecond, 1, {}};
      s.values.assign(3600, static_cast<float>(45 + step * n));
      nights.push_back(s);
    }
    const auto events = vt::Run(*op, *state, nights, 600);
    EXPECT_EQ(EpisodesOf(events, EpisodeKind::kCo2RisingTrend, Episode::Phase::kOpened).size(),
              expect ? 1u : 0u);
    double slope = -1;
    for (const auto& x : vt::Only<ops::Measurement>(events)) {
      if (x.name == "co2_trend_mm_hg_per_night") slope = x.value;
    }
    EXPECT_NEAR(slope, step, 1e-6);
  }
}

TEST(Co2Hypoventilation, OptionsAreValidated) {
  ops::HypoventilationOptions o;
  o.high_mm_hg = 10;
  EXPECT_THROW(ops::Hypoventilation::Make(o), ops::OptionError);
  o = {};
  o.time_zone = "Mars/Olympus";
  try {
    ops::Hypoventilation::Make(o);
    FAIL() << "no error";
  } catch (const ops::OptionError& e) {
    EXPECT_EQ(e.field(), "co2.hypoventilation.time_zone");
  }
  EXPECT_THROW(ops::HypoventilationOptions::FromParameters({{"hihg_mm_hg", 55}}), ops::OptionError);
}

}  // namespace
