// PatientAnalysis with a test-only operator that records what reaches it: frames in sequence
// order despite reordering, duplicates and late frames refused, gaps reported (never as data),
// one ECG lead per device, and snapshot/restore mid-stream giving the uninterrupted output.
#include "pipeline/analysis/patient_analysis.h"

#include <gtest/gtest.h>

#include <array>
#include <limits>

#include "operators/core/options.h"
#include "pipeline/analysis/aggregator.h"

namespace {

using namespace vigil;
using analysis::FrameOutcome;
using analysis::FrameView;
using analysis::Outputs;
using analysis::PatientAnalysis;
using ops::TimeUs;

constexpr TimeUs kT0 = 1'767'225'600'000'000;

// Emits one Measurement "chunk" per chunk (value = first sample) and "gap" per gap; raises an
// asystole episode when a chunk is all zeros (to exercise alerts through the analysis).
class RecorderOperator : public ops::StreamOperator {
 public:
  struct State : ops::OperatorState {
    double sum = 0;
    int64_t chunks = 0;
    std::string Snapshot() const override {
      ops::SnapshotWriter w;
      w.Put(sum);
      w.Put(chunks);
      return w.Take();
    }
    void Restore(std::string_view bytes) override {
      ops::SnapshotReader r(bytes);
      const double s = r.Get<double>();
      const auto c = r.Get<int64_t>();
      r.ExpectEnd();
      sum = s;
      chunks = c;
    }
  };
  std::string_view name() const override { return "test.recorder"; }
  std::string_view version() const override { return "1.0.0"; }
  std::span<const ops::Signal> inputs() const override { return kInputs; }
  std::unique_ptr<ops::OperatorState> MakeState() const override {
    return std::make_unique<State>();
  }
  void Process(ops::OperatorState& state, ops::Signal, const ops::Chunk& chunk,
               ops::Events& out) const override {
    auto& s = dynamic_cast<State&>(state);
    bool all_zero = true;
    for (float v : chunk.values) {
      s.sum += v;
      all_zero &= v == 0;
    }
    ++s.chunks;
    out.push_back(ops::Measurement{"chunk", chunk.values[0], chunk.first_sample_us});
    out.push_back(ops::Measurement{"running_sum", s.sum, chunk.first_sample_us});
    if (all_zero) {
      ops::Episode e;
      e.kind = ops::EpisodeKind::kAsystole;
      e.phase = ops::Episode::Phase::kClosed;
      e.start_us = chunk.first_sample_us;
      e.end_us = chunk.end_us();
      out.push_back(e);
    }
  }
  void OnGap(ops::OperatorState&, ops::Signal, TimeUs from, TimeUs to,
             ops::Events& out) const override {
    out.push_back(ops::Measurement{"gap", ops::ToSeconds(to - from), from});
  }

 private:
  static constexpr std::array<ops::Signal, 1> kInputs = {ops::Signal::kEcg};
};

std::shared_ptr<const analysis::AnalysisPlan> Plan(double reorder_s = 5) {
  analysis::AnalysisConfig config;
  config.reorder_tolerance_s = reorder_s;
  config.minute_aggregates = false;
  return analysis::AnalysisPlan::FromOperators(config, {std::make_shared<RecorderOperator>()});
}

struct Feed {
  std::vector<std::vector<float>> storage;
  FrameView Frame(uint64_t seq, float value, int lead = 1, const char* device = "dev") {
    storage.emplace_back(250, value);
    FrameView f;
    f.device_id = device;
    f.signal = ops::Signal::kEcg;
    f.lead = lead;
    f.sequence = seq;
    f.sample_rate_hz = 250;
    f.first_sample_us = kT0 + static_cast<TimeUs>(seq - 1) * 1'000'000;
    f.values = storage.back();
    return f;
  }
  // A frame whose device time does not follow from its sequence number (jumps, restarts).
  FrameView FrameAt(uint64_t seq, TimeUs first_us, float value,
                    ops::Signal signal = ops::Signal::kEcg) {
    FrameView f = Frame(seq, value, signal == ops::Signal::kEcg ? 1 : 0);
    f.signal = signal;
    f.first_sample_us = first_us;
    return f;
  }
};

std::vector<double> Chunks(const Outputs& out, const std::string& name = "chunk") {
  std::vector<double> v;
  for (const auto& e : out.events) {
    if (const auto* m = std::get_if<ops::Measurement>(&e); m && m->name == name)
      v.push_back(m->value);
  }
  return v;
}

TEST(PatientAnalysis, ReordersWithinToleranceAndRefusesDuplicates) {
  PatientAnalysis p("p", Plan());
  Feed feed;
  Outputs out;
  EXPECT_EQ(p.OnFrame(feed.Frame(1, 1), out), FrameOutcome::kProcessed);
  EXPECT_EQ(p.OnFrame(feed.Frame(3, 3), out), FrameOutcome::kProcessed);  // held back
  EXPECT_EQ(Chunks(out), (std::vector<double>{1}));
  EXPECT_EQ(p.OnFrame(feed.Frame(2, 2), out), FrameOutcome::kProcessed);
  EXPECT_EQ(Chunks(out), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(p.OnFrame(feed.Frame(2, 2), out), FrameOutcome::kDuplicate);
  EXPECT_EQ(p.OnFrame(feed.Frame(3, 3), out), FrameOutcome::kDuplicate);
  EXPECT_TRUE(Chunks(out, "gap").empty());
  EXPECT_EQ(p.counters().reordered, 1u);
}

TEST(PatientAnalysis, MissingFrameBecomesAGapAfterToleranceAndLateArrivalIsRefused) {
  PatientAnalysis p("p", Plan(2));
  Feed feed;
  Outputs out;
  p.OnFrame(feed.Frame(1, 1), out);
  p.OnFrame(feed.Frame(3, 3), out);
  p.OnFrame(feed.Frame(4, 4), out);  // 3 s beyond the expected frame 2 > 2 s tolerance
  EXPECT_EQ(Chunks(out), (std::vector<double>{1, 3, 4}));
  EXPECT_EQ(Chunks(out, "gap"), (std::vector<double>{1.0}));
  EXPECT_EQ(p.OnFrame(feed.Frame(2, 2), out), FrameOutcome::kTooLate);
  EXPECT_EQ(p.counters().gaps, 1u);
}

TEST(PatientAnalysis, LongGapRaisesSignalLostNeverAsystole) {
  PatientAnalysis p("p", Plan(1));
  Feed feed;
  Outputs out;
  p.OnFrame(feed.Frame(1, 1), out);
  p.OnFrame(feed.Frame(40, 1), out);  // 38 s without samples
  p.Finish(out);
  bool lost = false;
  for (const auto& a : out.alerts) {
    EXPECT_NE(a.condition(), v1::CONDITION_ASYSTOLE);
    lost |= a.condition() == v1::CONDITION_SIGNAL_LOST;
  }
  EXPECT_TRUE(lost);
}

TEST(PatientAnalysis, EveryEcgLeadOfADeviceReachesTheOperators) {
  // The first lead is the primary one (coverage, counters); the others are analysed too, to
  // verify its alarms (ecg_monitor.h).
  PatientAnalysis p("p", Plan());
  Feed feed;
  Outputs out;
  p.OnFrame(feed.Frame(1, 1, /*lead=*/13), out);
  p.OnFrame(feed.Frame(1, 7, /*lead=*/7), out);
  p.OnFrame(feed.Frame(2, 2, /*lead=*/13), out);
  EXPECT_EQ(Chunks(out), (std::vector<double>{1, 7, 2}));
  EXPECT_EQ(p.counters().secondary_lead_frames, 1u);
}

TEST(PatientAnalysis, AlertsComeFromOperatorEpisodes) {
  PatientAnalysis p("p", Plan());
  Feed feed;
  Outputs out;
  p.OnFrame(feed.Frame(1, 1), out);
  p.OnFrame(feed.Frame(2, 0), out);
  p.Finish(out);
  ASSERT_FALSE(out.alerts.empty());
  EXPECT_EQ(out.alerts.front().condition(), v1::CONDITION_ASYSTOLE);
  EXPECT_EQ(out.alerts.front().patient_id(), "p");
  EXPECT_EQ(out.alerts.front().onset_time_us(), kT0 + 1'000'000);
}

TEST(PatientAnalysis, SnapshotRestoreMidStreamEqualsUninterruptedRun) {
  Feed feed;
  const std::vector<uint64_t> order = {1, 2, 4, 3, 5, 7, 6, 8, 9, 10};
  auto value = [](uint64_t seq) { return seq % 4 == 0 ? 0.0f : static_cast<float>(seq); };

  PatientAnalysis straight("p", Plan());
  Outputs a;
  for (auto seq : order) straight.OnFrame(feed.Frame(seq, value(seq)), a);
  straight.Finish(a);

  PatientAnalysis first("p", Plan());
  Outputs b;
  for (size_t i = 0; i < 6; ++i)
    first.OnFrame(feed.Frame(order[i], value(order[i])), b);  // 7 pending
  const auto snapshot = first.Snapshot();
  PatientAnalysis second("p", Plan());
  second.Restore(snapshot);
  for (size_t i = 6; i < order.size(); ++i)
    second.OnFrame(feed.Frame(order[i], value(order[i])), b);
  second.Finish(b);

  EXPECT_EQ(Chunks(a, "running_sum"), Chunks(b, "running_sum"));
  ASSERT_EQ(a.alerts.size(), b.alerts.size());
  ASSERT_FALSE(a.alerts.empty());
  for (size_t i = 0; i < a.alerts.size(); ++i) {
    EXPECT_EQ(a.alerts[i].SerializeAsString(), b.alerts[i].SerializeAsString()) << i;
  }
}

// Hostile or broken sequence numbers and device times (issue 16): each is handled with bounded
// work - a test that finishes proves it - and the patient's later frames are still analysed.

TEST(PatientAnalysis, SequenceJumpIsDeclaredLostInBoundedWork) {
  PatientAnalysis p("p", Plan(2));
  Feed feed;
  Outputs out;
  EXPECT_EQ(p.OnFrame(feed.FrameAt(1, kT0, 1), out), FrameOutcome::kProcessed);
  // 2^62 - 2 missing sequence numbers; its time is past the reorder tolerance, so they are
  // declared lost at once.
  EXPECT_EQ(p.OnFrame(feed.FrameAt(uint64_t{1} << 62, kT0 + 10'000'000, 2), out),
            FrameOutcome::kProcessed);
  EXPECT_EQ(Chunks(out), (std::vector<double>{1, 2}));
  // The device goes on with its own small numbers: a restart, not 2^62 duplicates.
  EXPECT_EQ(p.OnFrame(feed.FrameAt(12, kT0 + 11'000'000, 3), out), FrameOutcome::kProcessed);
  EXPECT_EQ(p.OnFrame(feed.FrameAt(13, kT0 + 12'000'000, 4), out), FrameOutcome::kProcessed);
  EXPECT_EQ(Chunks(out), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(p.watermark_us(), kT0 + 13'000'000);
}

TEST(PatientAnalysis, ReorderBufferIsBoundedInSamplesSoTheSnapshotStaysSmall) {
  PatientAnalysis p("p", Plan(60));
  Feed feed;
  Outputs out;
  ASSERT_EQ(p.OnFrame(feed.Frame(1, 1), out), FrameOutcome::kProcessed);
  // Frame 2 never comes. Dense frames of 10^5 samples at 10 kHz (10 s each, inside the 60 s
  // tolerance) would wait behind it: 6 of them are already 2.4 MB.
  std::vector<float> dense(100000, 2.0f);
  for (uint64_t seq = 3; seq <= 8; ++seq) {
    FrameView f = feed.Frame(seq, 2);
    f.sample_rate_hz = 10000;
    f.first_sample_us = kT0 + 1'000'000 + static_cast<TimeUs>(seq - 3) * 10'000'000 + 1000;
    f.values = dense;
    ASSERT_EQ(p.OnFrame(f, out), FrameOutcome::kProcessed);
  }
  // Past 2^18 waiting samples the missing frame is declared lost and the rest processed.
  EXPECT_GE(Chunks(out).size(), 4u);
  EXPECT_LT(p.Snapshot().ByteSizeLong(), size_t{1} << 21);
}

TEST(PatientAnalysis, SequenceRestartResynchronisesWithATechnicalEvent) {
  PatientAnalysis p("p", Plan());
  Feed feed;
  Outputs out;
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_EQ(p.OnFrame(feed.FrameAt(seq, kT0 + static_cast<TimeUs>(seq - 1) * 1'000'000, 1), out),
              FrameOutcome::kProcessed);
  }
  // A genuine duplicate (same sequence, same time) is still refused.
  EXPECT_EQ(p.OnFrame(feed.FrameAt(3, kT0 + 2'000'000, 1), out), FrameOutcome::kDuplicate);
  // The device rebooted 25 s later and counts from 1 again.
  const TimeUs reboot = kT0 + 30'000'000;
  EXPECT_EQ(p.OnFrame(feed.FrameAt(1, reboot, 7), out), FrameOutcome::kProcessed);
  EXPECT_EQ(p.OnFrame(feed.FrameAt(2, reboot + 1'000'000, 8), out), FrameOutcome::kProcessed);
  EXPECT_EQ(p.OnFrame(feed.FrameAt(2, reboot + 1'000'000, 8), out), FrameOutcome::kDuplicate);
  EXPECT_EQ(Chunks(out), (std::vector<double>{1, 1, 1, 1, 1, 7, 8}));
  EXPECT_EQ(Chunks(out, "sequence_restart"), (std::vector<double>{5}));
  EXPECT_EQ(Chunks(out, "gap"), (std::vector<double>{25}));
  p.Finish(out);
  bool lost = false;
  for (const auto& a : out.alerts) lost |= a.condition() == v1::CONDITION_SIGNAL_LOST;
  EXPECT_TRUE(lost) << "the reboot's silence is a technical alert";
}

TEST(PatientAnalysis, ImplausibleDeviceTimesAreRejectedAndTheClockStays) {
  constexpr TimeUs kFar = std::numeric_limits<TimeUs>::max() / 2;
  PatientAnalysis p("p", Plan());
  Feed feed;
  Outputs out;
  EXPECT_EQ(p.OnFrame(feed.FrameAt(1, kT0, 1), out), FrameOutcome::kProcessed);
  EXPECT_EQ(p.OnFrame(feed.FrameAt(2, kFar, 2), out), FrameOutcome::kRejected);
  EXPECT_NE(p.last_rejection().find("first_sample_time_us"), std::string::npos)
      << p.last_rejection();
  EXPECT_EQ(p.OnFrame(feed.FrameAt(2, -kFar, 2), out), FrameOutcome::kRejected);
  // Plausible as a date, but two days ahead of the record's arrival (its Kafka timestamp).
  FrameView ahead = feed.FrameAt(2, kT0 + 2 * 86400'000'000LL, 2);
  ahead.arrival_us = kT0 + 1'000'000;
  EXPECT_EQ(p.OnFrame(ahead, out), FrameOutcome::kRejected);
  EXPECT_NE(p.last_rejection().find("max_time_ahead_s"), std::string::npos) << p.last_rejection();
  EXPECT_EQ(p.watermark_us(), kT0 + 1'000'000);
  EXPECT_EQ(p.OnFrame(feed.FrameAt(2, kT0 + 1'000'000, 3), out), FrameOutcome::kProcessed);
  EXPECT_EQ(Chunks(out), (std::vector<double>{1, 3}));
  EXPECT_EQ(p.watermark_us(), kT0 + 2'000'000);

  // A new patient's first frame is judged against its arrival time, when there is one.
  PatientAnalysis fresh("q", Plan());
  FrameView first = feed.FrameAt(1, kT0 + 3 * 86400'000'000LL, 1);
  first.arrival_us = kT0;
  EXPECT_EQ(fresh.OnFrame(first, out), FrameOutcome::kRejected);
  // Without one (an offline file) a device's data may leap ahead - 30 days of uploaded
  // session history before today's frames - but a time no device can have is still refused.
  EXPECT_EQ(fresh.OnFrame(feed.FrameAt(1, kFar, 1), out), FrameOutcome::kRejected);
  EXPECT_EQ(fresh.watermark_us(), 0);
}

// The adherence operator and the aggregator keep therapy days: a far-future time must not make
// them close one day after another up to it.
TEST(PatientAnalysis, FarFutureTimeNeverReachesTheDayLoops) {
  constexpr TimeUs kFar = std::numeric_limits<TimeUs>::max() / 2;
  analysis::AnalysisConfig config;
  config.operators.push_back({"adherence.usage", {}});
  PatientAnalysis p("p", analysis::AnalysisPlan::Make(config));
  Feed feed;
  Outputs out;
  const auto pressure = ops::Signal::kAirwayPressure;
  EXPECT_EQ(p.OnFrame(feed.FrameAt(1, kT0, 10, pressure), out), FrameOutcome::kProcessed);
  EXPECT_EQ(p.OnFrame(feed.FrameAt(2, kFar, 10, pressure), out), FrameOutcome::kRejected);
  FrameView ahead = feed.FrameAt(2, kFar / 1024, 10, pressure);  // the year 2112
  ahead.arrival_us = kT0;
  EXPECT_EQ(p.OnFrame(ahead, out), FrameOutcome::kRejected);
  ops::DeviceEventView event{ops::DeviceEventView::Type::kSessionStop, kFar};
  EXPECT_EQ(p.OnDeviceEvent("dev", event, out), FrameOutcome::kRejected);
  EXPECT_EQ(p.OnFrame(feed.FrameAt(2, kT0 + 1'000'000, 10, pressure), out),
            FrameOutcome::kProcessed);
  EXPECT_EQ(p.watermark_us(), kT0 + 2'000'000);
  p.Finish(out);
  size_t days = 0;
  for (const auto& a : out.aggregates) days += a.window() == v1::WINDOW_KIND_THERAPY_DAY;
  EXPECT_EQ(days, 1u);
}

// Issue 16 item 6: ever new device ids in one patient's records are refused past the bound,
// with the device named, and the patient's known streams go on.
TEST(PatientAnalysis, NewDeviceIdsBeyondTheBoundAreRejected) {
  PatientAnalysis p("p", Plan());
  Feed feed;
  Outputs out;
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back("dev-" + std::to_string(i));
  int rejected = 0;
  for (const auto& id : ids) {
    FrameView f = feed.Frame(1, 1);
    f.device_id = id;
    rejected += p.OnFrame(f, out) == FrameOutcome::kRejected;
  }
  EXPECT_EQ(rejected, 1000 - 16);
  EXPECT_NE(p.last_rejection().find("device_id = dev-999"), std::string::npos)
      << p.last_rejection();
  ops::DeviceEventView event{ops::DeviceEventView::Type::kSessionStart, kT0};
  EXPECT_EQ(p.OnDeviceEvent("another-device", event, out), FrameOutcome::kRejected);
  FrameView known = feed.Frame(2, 2);
  known.device_id = ids[0];
  EXPECT_EQ(p.OnFrame(known, out), FrameOutcome::kProcessed);
}

TEST(SampleTime, SaturatesInsteadOfOverflowing) {
  constexpr TimeUs kMax = std::numeric_limits<TimeUs>::max();
  EXPECT_EQ(ops::SampleTime(kT0, 250, 250), kT0 + 1'000'000);
  EXPECT_GT(ops::SampleTime(kMax - 10, 1, 1000), kMax - 11);
  EXPECT_LT(ops::SampleTime(-kMax + 10, 1, -1000), -kMax + 11);
  EXPECT_GT(ops::SampleTime(0, 1e-300, 1'000'000), 0);
  EXPECT_GT(ops::FromSeconds(1e300), 0);
}

TEST(AnalysisPlan, UnknownOperatorAndBadOverrideNameTheKey) {
  analysis::AnalysisConfig config;
  config.operators.push_back({"no.such.operator", {}});
  try {
    analysis::AnalysisPlan::Make(config);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("operators[0].name = no.such.operator"),
              std::string::npos);
  }
  analysis::AnalysisConfig tz;
  tz.default_time_zone = "Mars/Olympus";
  EXPECT_THROW(analysis::AnalysisPlan::Make(tz), ops::OptionError);
  auto plan = Plan();
  EXPECT_THROW(plan->WithOverrides({{"test.recorder.x", 1}}), std::exception);
}

// A patient's own time zone (vigil.patient-config.v1 time_zone) reaches the operators that
// keep therapy days: a session at 14:00 UTC is the afternoon of 1 January in Copenhagen (day
// 2026-01-01) but the morning in New York (still the day that began at noon on 31 December).
TEST(AnalysisPlan, PatientTimeZoneReachesTheAdherenceOperator) {
  analysis::AnalysisConfig config;
  config.default_time_zone = "Europe/Copenhagen";
  config.operators.push_back({"adherence.usage", {{"session_source", 1}}});
  const auto plan = analysis::AnalysisPlan::Make(config);
  const auto day_of_session = [](const analysis::AnalysisPlan& p) {
    const auto& op = *p.operators()[0];
    auto state = op.MakeState();
    ops::Events out;
    const TimeUs start = kT0 + 14 * 3600'000'000LL;  // 2026-01-01T14:00Z
    op.OnDeviceEvent(*state, {ops::DeviceEventView::Type::kSessionStart, start}, out);
    op.OnDeviceEvent(*state, {ops::DeviceEventView::Type::kSessionStop, start + 3600'000'000LL},
                     out);
    op.AdvanceTo(*state, start + 2 * 86400'000'000LL, out);
    for (const auto& e : out) {
      if (const auto* d = std::get_if<ops::TherapyDay>(&e); d && d->usage_min > 0) return d->date;
    }
    return std::string("none");
  };
  EXPECT_EQ(day_of_session(*plan), "2026-01-01");
  const auto new_york = plan->WithOverrides({}, "America/New_York");
  EXPECT_EQ(new_york->config().default_time_zone, "America/New_York");
  EXPECT_EQ(day_of_session(*new_york), "2025-12-31");
  EXPECT_THROW(plan->WithOverrides({}, "Mars/Olympus"), ops::OptionError);
}

}  // namespace

namespace {

TEST(Aggregator, LateBeatNeverPublishesAMinuteTwice) {
  analysis::Aggregator agg("p", "Europe/Copenhagen", true);
  std::vector<v1::Aggregate> out;
  auto beat = [&](double s) {
    ops::Beat b;
    b.time_us = kT0 + ops::FromSeconds(s);
    b.heart_rate_bpm = 60;
    agg.OnEvent(b);
  };
  for (int i = 0; i < 60; ++i) beat(i);
  agg.AdvanceTo(kT0 + ops::FromSeconds(60 + 29), out);
  EXPECT_TRUE(out.empty()) << "the minute stays open for delayed events";
  beat(59.5);  // a delayed beat within the allowed lateness still counts
  agg.AdvanceTo(kT0 + ops::FromSeconds(60 + 30), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].cardiac().beats(), 61u);
  beat(59.9);  // too late now
  agg.AdvanceTo(kT0 + ops::FromSeconds(200), out);
  agg.Finish(out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(agg.late_events(), 1u);
}

}  // namespace

namespace {

// A measurement an operator's spec declares nightly reaches that night's therapy-day aggregate by
// name, also across a snapshot; other measurements do not.
TEST(Aggregator, NightlyMeasurementsGoIntoTheirTherapyDay) {
  analysis::Aggregator agg("p", "Europe/Copenhagen", false);
  const auto night = analysis::TherapyDayOf(kT0, "Europe/Copenhagen");
  // co2.hypoventilation declares co2_max_mm_hg nightly and emits it at the night's end.
  agg.OnEvent(ops::Measurement{"co2_max_mm_hg", 58.5, night.end_us});
  agg.OnEvent(ops::Measurement{"leak_lpm", 12, night.end_us - 1});
  const std::string bytes = agg.Snapshot();
  analysis::Aggregator restored("p", "Europe/Copenhagen", false);
  restored.Restore(bytes);
  ops::TherapyDay day;
  day.date = night.date;
  day.start_us = night.start_us;
  day.end_us = night.end_us;
  day.usage_min = 300;
  std::vector<v1::Aggregate> out;
  restored.OnEvent(day);
  restored.AdvanceTo(night.end_us + ops::FromSeconds(60), out);
  const v1::Aggregate* therapy_day = nullptr;
  for (const auto& a : out) {
    if (a.window() == v1::WINDOW_KIND_THERAPY_DAY) therapy_day = &a;
  }
  ASSERT_NE(therapy_day, nullptr);
  ASSERT_EQ(therapy_day->measures_size(), 1);
  EXPECT_EQ(therapy_day->measures(0).name(), "co2_max_mm_hg");
  EXPECT_EQ(therapy_day->measures(0).value(), 58.5);
  EXPECT_EQ(therapy_day->measures(0).unit(), "mmHg");
  // Without nightly measurements held, the snapshot keeps the format the release before reads.
  EXPECT_EQ(restored.Snapshot().substr(0, 4), std::string("\x01\0\0\0", 4));
}

}  // namespace

namespace {

// A patient without a ventilator (no adherence days): its nightly measurements go out in a
// therapy-day window of their own an hour after the day ends, once; a name no operator declares
// (from an older release's snapshot) is left out on restore instead of failing every record.
TEST(Aggregator, NightlyMeasurementsWithoutATherapyDayGoOutAlone) {
  analysis::Aggregator agg("p", "Europe/Copenhagen", false);
  const auto night = analysis::TherapyDayOf(kT0, "Europe/Copenhagen");
  agg.OnEvent(ops::Measurement{"spo2_t90_min", 12.5, night.end_us});
  std::vector<v1::Aggregate> out;
  agg.AdvanceTo(night.end_us + analysis::Aggregator::kNightGraceUs - 1, out);
  EXPECT_TRUE(out.empty()) << "it waits for the adherence operator's window of that day";
  analysis::Aggregator restored("p", "Europe/Copenhagen", false);
  restored.Restore(agg.Snapshot());
  restored.AdvanceTo(night.end_us + analysis::Aggregator::kNightGraceUs, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].window(), v1::WINDOW_KIND_THERAPY_DAY);
  EXPECT_EQ(out[0].therapy_date(), night.date);
  EXPECT_EQ(out[0].window_start_us(), night.start_us);
  ASSERT_EQ(out[0].measures_size(), 1);
  EXPECT_EQ(out[0].measures(0).unit(), "min");
  // Late for a published day: dropped, never a second window of that day.
  restored.OnEvent(ops::Measurement{"spo2_min_pct", 88, night.end_us});
  restored.AdvanceTo(night.end_us + 3 * analysis::Aggregator::kNightGraceUs, out);
  EXPECT_EQ(out.size(), 1u);
}

}  // namespace
