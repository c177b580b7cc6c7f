// The respiratory chain on the ResMed card recordings (samples per second per core) and the
// adherence rules over a 30-day history for 100,000 patients. Targets (issue 4): >= 30 M
// samples/s/core for the chain; < 1 s on one core for the adherence computations.
#include <benchmark/benchmark.h>

#include <random>

#include "operators/adherence/adherence_rules.h"
#include "operators/io/resmed_card.h"
#include "operators/respiration/breath_segmentation.h"
#include "operators/respiration/leak.h"
#include "operators/respiration/respiratory_events.h"

namespace {

namespace ops = vigil::ops;

const vigil::io::ResmedCard& Card() {
  static const auto card = vigil::io::ReadResmedCard(
      std::filesystem::path(VIGIL_SHARED_DATA_DEFAULT) / "resmed/airsense10-autoset");
  return card;
}

void RunChain(benchmark::State& state, const std::vector<const ops::StreamOperator*>& ops_list) {
  const auto& card = Card();
  const auto items = vigil::io::CardTelemetry(card, 60);
  int64_t samples = 0;
  ops::Events out;
  out.reserve(1 << 16);
  for (auto _ : state) {
    std::vector<std::unique_ptr<ops::OperatorState>> states;
    for (const auto* op : ops_list) states.push_back(op->MakeState());
    for (const auto& item : items) {
      if (!item.series) continue;
      const auto chunk = item.chunk();
      bool read = false;
      for (size_t k = 0; k < ops_list.size(); ++k) {
        const auto in = ops_list[k]->inputs();
        if (std::find(in.begin(), in.end(), item.series->signal) == in.end()) continue;
        ops_list[k]->Process(*states[k], item.series->signal, chunk, out);
        read = true;
      }
      // Each recorded sample counts once, however many operators of the chain read it.
      if (read) samples += static_cast<int64_t>(chunk.values.size());
      out.clear();
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
}

void BM_BreathSegmentation(benchmark::State& state) {
  const auto op = ops::BreathSegmentation::Make({});
  RunChain(state, {op.get()});
}
BENCHMARK(BM_BreathSegmentation)->Unit(benchmark::kMillisecond);

void BM_RespiratoryEvents(benchmark::State& state) {
  const auto op = ops::RespiratoryEvents::Make({});
  RunChain(state, {op.get()});
}
BENCHMARK(BM_RespiratoryEvents)->Unit(benchmark::kMillisecond);

// The whole chain: each flow/pressure/leak/SpO2 sample counted once per operator that reads it.
void BM_RespiratoryChain(benchmark::State& state) {
  const auto a = ops::BreathSegmentation::Make({});
  const auto b = ops::RespiratoryEvents::Make({});
  const auto c = ops::LeakMonitor::Make({});
  RunChain(state, {a.get(), b.get(), c.get()});
}
BENCHMARK(BM_RespiratoryChain)->Unit(benchmark::kMillisecond);

void BM_Adherence100kPatients(benchmark::State& state) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> usage(0, 9);
  constexpr int kPatients = 100'000;
  std::vector<double> history(static_cast<size_t>(kPatients) * 37);
  for (auto& h : history) h = usage(rng);
  const ops::AdherenceRules rules;
  for (auto _ : state) {
    int compliant = 0, declining = 0;
    for (int p = 0; p < kPatients; ++p) {
      const auto s = ops::EvaluateAdherence(
          std::span<const double>(history.data() + static_cast<size_t>(p) * 37, 37), rules);
      compliant += s.compliance_met;
      declining += s.decline;
    }
    benchmark::DoNotOptimize(compliant);
    benchmark::DoNotOptimize(declining);
  }
  state.counters["patients_per_s"] = benchmark::Counter(
      static_cast<double>(kPatients) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Adherence100kPatients)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
