// `vigil simulate` throughput: how many patients one core generates in real time.
// Counter `patients_rt` = patients x device seconds / CPU seconds (target: >= 20,000 with
// encoding; ECG 250 Hz, flow and pressure 25 Hz, CO2 1 Hz per patient, the cohort's mix of
// cardiac-only, NIV-only and both).
#include <benchmark/benchmark.h>

#include "pipeline/simulate/simulated_telemetry.h"
#include "simulator/patient_simulator.h"

namespace {

constexpr uint32_t kPatients = 200;

std::vector<vigil::sim::PatientSimulator> MakeCohort(const vigil::sim::SimulationOptions& o,
                                                     std::vector<vigil::sim::PatientProfile>& profiles) {
  profiles.clear();
  for (uint32_t i = 0; i < kPatients; ++i) profiles.push_back(vigil::sim::DrawProfile(7, i));
  std::vector<vigil::sim::PatientSimulator> sims;
  sims.reserve(kPatients);
  for (const auto& p : profiles) sims.emplace_back(p, o);
  return sims;
}

// Generation only: samples into PatientBlocks, no protobuf.
void BM_GenerateOnly(benchmark::State& state) {
  vigil::sim::SimulationOptions options;
  std::vector<vigil::sim::PatientProfile> profiles;
  auto sims = MakeCohort(options, profiles);
  vigil::sim::PatientBlock block;
  int64_t seconds = 0;
  uint64_t samples = 0;
  for (auto _ : state) {
    for (auto& s : sims) {
      s.Next(1, block);
      samples += block.ecg.size() + block.flow.size() * 2 + block.co2.size();
      benchmark::DoNotOptimize(block.ecg.data());
    }
    ++seconds;
  }
  const double patient_seconds = static_cast<double>(seconds) * kPatients;
  state.counters["patients_rt"] =
      benchmark::Counter(patient_seconds, benchmark::Counter::kIsRate);
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_GenerateOnly)->Unit(benchmark::kMillisecond)->MinTime(3);

// Generation + envelope encoding + serialisation to bytes (what goes to Kafka).
void BM_GenerateAndEncode(benchmark::State& state) {
  vigil::simulate::CohortOptions options;
  options.patients = kPatients;
  options.simulation.seed = 7;
  vigil::simulate::SimulatedCohort cohort(options);
  vigil::v1::TelemetryEnvelope envelope;
  std::vector<vigil::sim::TruthEvent> truth;
  std::string bytes;
  int64_t seconds = 0;
  uint64_t total_bytes = 0;
  for (auto _ : state) {
    for (uint32_t i = 0; i < cohort.size(); ++i) {
      if (cohort.NextEnvelope(i, envelope, truth)) {
        envelope.SerializeToString(&bytes);
        total_bytes += bytes.size();
      }
    }
    truth.clear();
    ++seconds;
  }
  const double patient_seconds = static_cast<double>(seconds) * kPatients;
  state.counters["patients_rt"] =
      benchmark::Counter(patient_seconds, benchmark::Counter::kIsRate);
  state.counters["bytes_per_s"] =
      benchmark::Counter(static_cast<double>(total_bytes), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_GenerateAndEncode)->Unit(benchmark::kMillisecond)->MinTime(3);

}  // namespace

BENCHMARK_MAIN();
