// `vigil simulate`'s envelopes: deterministic by seed, valid for the pipeline's frame decoder,
// sequences +1 per stream, frames contiguous in device time, and the offline replay accepts
// them without rejecting anything.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <tuple>

#include "pipeline/analysis/frame_decoder.h"
#include "pipeline/replay/offline_replay.h"
#include "pipeline/simulate/simulated_telemetry.h"

namespace {

using namespace vigil;

struct SimRun {
  std::vector<std::string> envelopes;  // serialised
  std::vector<std::string> truth;      // JSON lines
};

SimRun Simulate(uint64_t seed, uint32_t patients, int seconds, int block_seconds = 1) {
  simulate::CohortOptions options;
  options.patients = patients;
  options.block_seconds = block_seconds;
  options.simulation.seed = seed;
  options.simulation.event_rate = 40;  // plenty of events in a short run
  options.simulation.end_us = options.simulation.start_us + seconds * ops::kMicrosPerSecond;
  simulate::SimulatedCohort cohort(options);
  SimRun run;
  v1::TelemetryEnvelope envelope;
  std::vector<sim::TruthEvent> truth;
  while (!cohort.finished()) {
    for (uint32_t i = 0; i < cohort.size(); ++i) {
      if (cohort.NextEnvelope(i, envelope, truth)) {
        run.envelopes.push_back(envelope.SerializeAsString());
      }
      for (const auto& t : truth) {
        run.truth.push_back(sim::TruthLine(cohort.profile(i).patient_id, t,
                                           options.simulation.start_us));
      }
      truth.clear();
    }
  }
  return run;
}

TEST(SimulatedTelemetry, SameSeedGivesIdenticalBytesAndTruth) {
  const auto a = Simulate(5, 6, 240);
  const auto b = Simulate(5, 6, 240);
  ASSERT_FALSE(a.envelopes.empty());
  ASSERT_FALSE(a.truth.empty());
  EXPECT_EQ(a.envelopes, b.envelopes);
  EXPECT_EQ(a.truth, b.truth);
  const auto c = Simulate(6, 6, 240);
  EXPECT_NE(a.envelopes, c.envelopes);
}

// Samples and truth do not depend on how many seconds go into one envelope.
TEST(SimulatedTelemetry, BlockSizeDoesNotChangeTheSignals) {
  auto samples = [](const SimRun& run) {
    std::map<std::tuple<std::string, int>, std::vector<int32_t>> streams;
    for (const auto& bytes : run.envelopes) {
      v1::TelemetryEnvelope e;
      EXPECT_TRUE(e.ParseFromString(bytes));
      for (const auto& f : e.frames()) {
        auto& s = streams[{f.device_id(), static_cast<int>(f.kind())}];
        s.insert(s.end(), f.samples().begin(), f.samples().end());
      }
    }
    return streams;
  };
  const auto one = Simulate(9, 4, 120, 1);
  const auto four = Simulate(9, 4, 120, 4);
  EXPECT_EQ(samples(one), samples(four));
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(one.truth), sorted(four.truth));
}

TEST(SimulatedTelemetry, EnvelopesDecodeWithContiguousFramesAndSequencesPlusOne) {
  const auto run = Simulate(3, 8, 90);
  struct Stream {
    uint64_t sequence = 0;
    int64_t next_us = 0;
  };
  std::map<std::tuple<std::string, int>, Stream> streams;
  std::map<std::string, uint64_t> event_sequences;
  std::map<std::string, int> per_patient;
  analysis::DecodeLimits limits;
  std::vector<float> values;
  for (const auto& bytes : run.envelopes) {
    v1::TelemetryEnvelope e;
    ASSERT_TRUE(e.ParseFromString(bytes));
    ASSERT_EQ(e.patient_id().rfind("sim-", 0), 0u);
    ++per_patient[e.patient_id()];
    for (int i = 0; i < e.frames_size(); ++i) {
      const auto& f = e.frames(i);
      const auto rejection = analysis::DecodeFrame(f, i, limits, values);
      ASSERT_FALSE(rejection.has_value()) << rejection->detail;
      auto& s = streams[{f.device_id(), static_cast<int>(f.kind())}];
      EXPECT_EQ(f.sequence(), s.sequence + 1) << f.device_id();
      if (s.sequence > 0) {
        EXPECT_EQ(f.first_sample_time_us(), s.next_us) << f.device_id();
      }
      s.sequence = f.sequence();
      s.next_us = f.first_sample_time_us() +
                  static_cast<int64_t>(f.samples_size() * 1e6 / f.sample_rate_hz());
      if (f.kind() == v1::SIGNAL_KIND_ECG) {
        for (const float v : values) ASSERT_LE(std::abs(v), 10.3f);
      }
      if (f.kind() == v1::SIGNAL_KIND_TRANSCUTANEOUS_CO2) {
        for (const float v : values) ASSERT_TRUE(v > 25 && v < 80) << v;
      }
    }
    int64_t last_event = INT64_MIN;
    for (const auto& ev : e.events()) {
      EXPECT_EQ(ev.sequence(), ++event_sequences[ev.device_id()]) << ev.device_id();
      EXPECT_GE(ev.time_us(), last_event);
      last_event = ev.time_us();
      EXPECT_TRUE(analysis::DecodeDeviceEvent(ev).has_value());
    }
  }
  // Every patient has ECG or an NIV session from the start: one envelope per second.
  EXPECT_EQ(per_patient.size(), 8u);
  for (const auto& [patient, n] : per_patient) EXPECT_EQ(n, 90) << patient;
}

TEST(SimulatedTelemetry, OfflineReplayAcceptsEveryFrame) {
  const auto profile = sim::DrawProfile(4, 2);
  sim::SimulationOptions options;
  options.seed = 4;
  options.event_rate = 20;
  options.end_us = options.start_us + 120 * ops::kMicrosPerSecond;
  std::vector<sim::TruthEvent> truth;
  auto source = simulate::MakePatientSource(profile, options, &truth);
  auto plan = analysis::AnalysisPlan::Make(replay::DefaultAnalysisConfig());
  std::ostringstream out, diagnostics;
  const auto stats =
      replay::ReplayToJsonLines(*source, plan, profile.patient_id, {}, out, diagnostics);
  EXPECT_EQ(stats.envelopes, 120u);
  EXPECT_EQ(stats.rejected_frames, 0u) << diagnostics.str();
  EXPECT_GT(stats.samples, 120u * 25);
  EXPECT_EQ(source->origin_us(), options.start_us);
}

TEST(SimulatedTelemetry, TruthLinesCarryPatientKindAndTimes) {
  sim::TruthEvent e{sim::TruthKind::kApnea, 1'767'646'812'000'000, 1'767'646'830'500'000,
                    {{"drop_pct", 96}}};
  const auto line = sim::TruthLine("sim-00042", e, 1'767'646'800'000'000);
  EXPECT_EQ(line,
            "{\"patient\":\"sim-00042\",\"kind\":\"APNEA\",\"start_us\":1767646812000000,"
            "\"end_us\":1767646830500000,\"start\":\"2026-01-05T21:00:12.000000Z\","
            "\"end\":\"2026-01-05T21:00:30.500000Z\",\"t_start\":12.000,\"t_end\":30.500,"
            "\"params\":{\"drop_pct\":96}}");
}

}  // namespace
