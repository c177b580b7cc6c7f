// `vigil simulate` throughput: how many patients one core generates in real time.
// Counter `patients_rt` = patients x device seconds / CPU seconds; the target is >= 20,000 per
// core with envelope encoding. Arguments: {signals, encode}
//   signals 0 = the cohort's own mix (cardiac-only, NIV-only, both), 1 = every patient has
//             every signal (ECG 250 Hz, flow and pressure 25 Hz, tcCO2 1 Hz: the worst case);
//   encode  0 = samples into PatientBlocks only, 1 = plus vigil.v1.TelemetryEnvelope encoding
//             and serialisation to bytes (what `vigil simulate --kafka` hands to librdkafka).
#include <benchmark/benchmark.h>

#include "pipeline/simulate/simulated_telemetry.h"
#include "simulator/patient_simulator.h"

namespace {

constexpr uint32_t kPatients = 200;

void BM_Simulate(benchmark::State& state) {
  const bool all_signals = state.range(0) != 0;
  const bool encode = state.range(1) != 0;
  vigil::sim::SimulationOptions options;
  options.seed = 7;
  std::vector<vigil::sim::PatientProfile> profiles;
  for (uint32_t i = 0; i < kPatients; ++i) {
    profiles.push_back(vigil::sim::DrawProfile(options.seed, i));
    if (all_signals) profiles.back().monitoring = vigil::sim::Monitoring::kBoth;
  }
  std::vector<vigil::sim::PatientSimulator> simulators;
  std::vector<vigil::simulate::EnvelopeEncoder> encoders;
  simulators.reserve(kPatients);
  for (const auto& p : profiles) {
    simulators.emplace_back(p, options);
    encoders.emplace_back(p);
  }
  vigil::sim::PatientBlock block;
  vigil::v1::TelemetryEnvelope envelope;
  std::string bytes;
  int64_t seconds = 0;
  uint64_t samples = 0, total_bytes = 0;
  for (auto _ : state) {
    for (uint32_t i = 0; i < kPatients; ++i) {
      simulators[i].Next(1, block);
      samples += block.ecg.size() + 2 * block.flow.size() + block.co2.size();
      if (encode && encoders[i].Encode(block, envelope)) {
        envelope.SerializeToString(&bytes);
        total_bytes += bytes.size();
      }
      benchmark::DoNotOptimize(block.ecg.data());
    }
    ++seconds;
  }
  state.counters["patients_rt"] =
      benchmark::Counter(static_cast<double>(seconds) * kPatients, benchmark::Counter::kIsRate);
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
  state.counters["bytes_per_s"] =
      benchmark::Counter(static_cast<double>(total_bytes), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Simulate)
    ->ArgNames({"all_signals", "encode"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3);

}  // namespace

BENCHMARK_MAIN();
