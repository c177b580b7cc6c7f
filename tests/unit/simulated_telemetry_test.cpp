// `vigil simulate`'s envelopes: deterministic by seed, valid for the pipeline's frame decoder,
// sequences +1 per stream, frames contiguous in device time, and the offline replay accepts
// them without rejecting anything.
#include "pipeline/simulate/simulated_telemetry.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <tuple>

#include "pipeline/analysis/frame_decoder.h"
#include "pipeline/replay/offline_replay.h"

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
        run.truth.push_back(
            sim::TruthLine(cohort.profile(i).patient_id, t, options.simulation.start_us));
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
  sim::TruthEvent e{
      sim::TruthKind::kApnea, 1'767'646'812'000'000, 1'767'646'830'500'000, {{"drop_pct", 96}}};
  const auto line = sim::TruthLine("sim-00042", e, 1'767'646'800'000'000);
  EXPECT_EQ(line,
            "{\"patient\":\"sim-00042\",\"kind\":\"APNEA\",\"start_us\":1767646812000000,"
            "\"end_us\":1767646830500000,\"start\":\"2026-01-05T21:00:12.000000Z\","
            "\"end\":\"2026-01-05T21:00:30.500000Z\",\"t_start\":12.000,\"t_end\":30.500,"
            "\"params\":{\"drop_pct\":96}}");
}

}  // namespace

// End to end without a broker: a simulated ventilated patient through the offline replay (the
// service's analysis): the injected apneas and the large leak come back as episodes near their
// truth, and nothing is rejected.
TEST(SimulatedTelemetry, OfflineAnalysisFindsInjectedRespiratoryEvents) {
  auto profile = sim::DrawProfile(12, 5);
  profile.monitoring = sim::Monitoring::kVentilation;
  profile.adherence = sim::AdherencePattern::kCompliant;
  profile.usual_usage_h = 7;
  sim::SimulationOptions options;
  options.seed = 12;
  options.end_us = options.start_us + 1200 * ops::kMicrosPerSecond;
  auto at = [&](double s) { return options.start_us + ops::FromSeconds(s); };
  auto simulator = std::make_unique<sim::PatientSimulator>(profile, options);
  simulator->ForceNivPlans({{sim::TruthKind::kApnea, at(240), at(262), 0.02},
                            {sim::TruthKind::kApnea, at(400), at(425), 0.02},
                            {sim::TruthKind::kApnea, at(560), at(580), 0.02},
                            {sim::TruthKind::kLargeLeak, at(700), at(1000), 45}});
  std::vector<sim::TruthEvent> truth;
  auto source = simulate::MakePatientSource(std::move(simulator), &truth);
  auto plan = analysis::AnalysisPlan::Make(replay::DefaultAnalysisConfig());
  std::ostringstream out, diagnostics;
  replay::ReplayOutputOptions what;
  what.beats = false;
  what.aggregates = false;
  const auto stats =
      replay::ReplayToJsonLines(*source, plan, profile.patient_id, what, out, diagnostics);
  EXPECT_EQ(stats.rejected_frames, 0u) << diagnostics.str();
  ASSERT_EQ(truth.size(), 4u);

  // Episode lines: {"type":"episode","rhythm":"APNEA","start":240.0,"end":262.0,...}
  struct Found {
    std::string kind;
    double start, end;
  };
  std::vector<Found> found;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"type\":\"episode\"") == std::string::npos) continue;
    const auto k = line.find("\"rhythm\":\"") + 10;
    const auto s = line.find("\"start\":") + 8;
    const auto e = line.find("\"end\":") + 6;
    found.push_back({line.substr(k, line.find('"', k) - k), std::stod(line.substr(s)),
                     std::stod(line.substr(e))});
  }
  auto detected = [&](const sim::TruthEvent& t) {
    const double ts = ops::ToSeconds(t.start_us - options.start_us);
    const double te = ops::ToSeconds(t.end_us - options.start_us);
    for (const auto& f : found) {
      if (f.kind == sim::TruthKindName(t.kind) && f.start < te + 5 && f.end > ts - 5) return true;
    }
    return false;
  };
  for (const auto& t : truth) EXPECT_TRUE(detected(t)) << sim::TruthKindName(t.kind);
  int apneas = 0;
  for (const auto& f : found) apneas += f.kind == "APNEA";
  EXPECT_EQ(apneas, 3);
}
