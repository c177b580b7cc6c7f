// Throughput of the whole ECG chain (ecg.arrhythmia: conditioning filters, QRS detection, beat
// classification, heart rate; rhythm analysis once merged into the operator) on the MIT-BIH
// records in ../shared/data/mitdb, in samples per second on one core (CPU time, so other
// processes on a shared machine do not count against it). Target: >= 30 M/s.
//
//   build/bench/ecg_chain_bench [--benchmark_filter=...]
// Also: the QRS detector alone and the conditioning filter alone, to see where time goes.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "operators/ecg/af_model.h"
#include "operators/ecg/ecg_monitor.h"
#include "operators/ecg/pulse_detector.h"
#include "operators/ecg/qrs_detector.h"
#include "operators/filters/biquad_cascade.h"
#include "operators/io/wfdb_record.h"

namespace {

struct Record {
  std::string name;
  double fs;
  std::vector<float> x;
};

const std::vector<Record>& Records() {
  static const std::vector<Record> records = [] {
    const char* env = std::getenv("VIGIL_SHARED_DATA");
    const std::filesystem::path root =
        std::filesystem::path(env && *env ? env : VIGIL_SHARED_DATA_DEFAULT) / "mitdb";
    std::vector<Record> out;
    for (const auto& entry : std::filesystem::directory_iterator(root)) {
      if (entry.path().extension() != ".hea") continue;
      auto path = entry.path();
      const auto rec = vigil::io::ReadWfdbRecord(path.replace_extension());
      out.push_back({rec.header.record_name, rec.header.sampling_frequency, rec.PhysicalSignal(0)});
    }
    if (out.empty()) throw std::runtime_error("no MIT-BIH records in " + root.string());
    return out;
  }();
  return records;
}

std::filesystem::path SharedData() {
  const char* env = std::getenv("VIGIL_SHARED_DATA");
  return std::filesystem::path(env && *env ? env : VIGIL_SHARED_DATA_DEFAULT);
}

// Each record's second lead, in Records() order.
const std::vector<std::vector<float>>& SecondLeads() {
  static const std::vector<std::vector<float>> leads = [] {
    std::vector<std::vector<float>> out;
    for (const auto& r : Records()) {
      const auto rec = vigil::io::ReadWfdbRecord(SharedData() / "mitdb" / r.name);
      out.push_back(rec.PhysicalSignal(1));
    }
    return out;
  }();
  return leads;
}

// The PLETH channels of the first 40 CinC 2015 records that have one.
const std::vector<std::vector<float>>& Plethysmograms() {
  static const std::vector<std::vector<float>> signals = [] {
    std::vector<std::filesystem::path> headers;
    for (const auto& e : std::filesystem::directory_iterator(SharedData() / "cinc2015")) {
      if (e.path().extension() == ".hea") headers.push_back(e.path());
    }
    std::sort(headers.begin(), headers.end());
    std::vector<std::vector<float>> out;
    for (auto path : headers) {
      const auto rec = vigil::io::ReadWfdbRecord(path.replace_extension());
      for (size_t k = 0; k < rec.header.signals.size() && out.size() < 40; ++k) {
        if (rec.header.signals[k].description == "PLETH") out.push_back(rec.PhysicalSignal(k));
      }
    }
    if (out.empty()) throw std::runtime_error("no PLETH channel in cinc2015");
    return out;
  }();
  return signals;
}

int64_t TotalSamples() {
  int64_t n = 0;
  for (const auto& r : Records()) n += static_cast<int64_t>(r.x.size());
  return n;
}

// The operator as the runtime drives it: chunks of range(0) ms; range(1) is af_model (1: the
// trained AF model, the default; 0: the AF rules alone), so that the model's cost shows side by
// side: (time with it - time without) / beats is its cost per beat window.
void BM_EcgChain(benchmark::State& state) {
  const double chunk_s = static_cast<double>(state.range(0)) / 1000.0;
  const auto op = vigil::ecg::EcgMonitor::Make(
      vigil::ops::Parameters{{"af_model", static_cast<double>(state.range(1))}});
  vigil::ops::Events events;
  int64_t beats = 0;
  Records();  // load outside the timed loop
  for (auto _ : state) {
    for (const auto& r : Records()) {
      auto st = op->MakeState();
      const auto chunk = static_cast<size_t>(chunk_s * r.fs);
      for (size_t i = 0; i < r.x.size(); i += chunk) {
        events.clear();
        const vigil::ops::Chunk c{vigil::ops::SampleTime(0, r.fs, static_cast<int64_t>(i)), r.fs,
                                  std::span(r.x).subspan(i, std::min(chunk, r.x.size() - i))};
        op->Process(*st, vigil::ops::Signal::kEcg, c, events);
        for (const auto& e : events) beats += std::holds_alternative<vigil::ops::Beat>(e);
      }
      op->Finish(*st, events);
    }
  }
  benchmark::DoNotOptimize(beats);
  state.SetItemsProcessed(state.iterations() * TotalSamples());
  state.counters["records"] = static_cast<double>(Records().size());
  state.counters["beats"] = static_cast<double>(beats) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_EcgChain)
    ->Args({1000, 1})
    ->Args({1000, 0})
    ->Args({100, 1})
    ->Unit(benchmark::kMillisecond);

// Both MIT-BIH leads, as a two-lead device sends them (1 s chunks, lead after lead): the second
// lead runs the chain privately to verify the first's alarms. Items: the samples of both leads,
// so samples/s here against BM_EcgChain/1000 is the cost per lead.
void BM_EcgChainTwoLeads(benchmark::State& state) {
  const auto op = vigil::ecg::EcgMonitor::Make(vigil::ops::Parameters{});
  vigil::ops::Events events;
  int64_t n = 0;
  SecondLeads();
  for (auto _ : state) {
    for (size_t k = 0; k < Records().size(); ++k) {
      const auto& r = Records()[k];
      const auto& second = SecondLeads()[k];
      auto st = op->MakeState();
      const auto chunk = static_cast<size_t>(r.fs);
      for (size_t i = 0; i < r.x.size(); i += chunk) {
        events.clear();
        const size_t len = std::min(chunk, r.x.size() - i);
        const auto t = vigil::ops::SampleTime(0, r.fs, static_cast<int64_t>(i));
        op->Process(*st, vigil::ops::Signal::kEcg, {t, r.fs, std::span(r.x).subspan(i, len), 13},
                    events);
        op->Process(*st, vigil::ops::Signal::kEcg, {t, r.fs, std::span(second).subspan(i, len), 7},
                    events);
        n += static_cast<int64_t>(events.size());
      }
      op->Finish(*st, events);
    }
  }
  benchmark::DoNotOptimize(n);
  state.SetItemsProcessed(state.iterations() * 2 * TotalSamples());
}
BENCHMARK(BM_EcgChainTwoLeads)->Unit(benchmark::kMillisecond);

// The pulse detector alone on the PLETH channels of the CinC 2015 records.
void BM_PulseDetector(benchmark::State& state) {
  const auto detector = vigil::ecg::PulseDetector::Make({});
  int64_t samples = 0;
  for (const auto& x : Plethysmograms()) samples += static_cast<int64_t>(x.size());
  for (auto _ : state) {
    for (const auto& x : Plethysmograms()) {
      vigil::ecg::PulseDetector::State st;
      for (size_t i = 0; i < x.size(); i += 250) {
        detector.Process(st, {vigil::ops::SampleTime(0, 250, static_cast<int64_t>(i)), 250,
                              std::span(x).subspan(i, std::min<size_t>(250, x.size() - i))});
      }
      benchmark::DoNotOptimize(st.pulses.size());
    }
  }
  state.SetItemsProcessed(state.iterations() * samples);
}
BENCHMARK(BM_PulseDetector)->Unit(benchmark::kMillisecond);

void BM_QrsDetectorOnly(benchmark::State& state) {
  std::vector<vigil::ecg::QrsDetection> out;
  Records();
  for (auto _ : state) {
    for (const auto& r : Records()) {
      vigil::ecg::QrsOptions o;
      o.sample_rate_hz = r.fs;
      vigil::ecg::QrsDetector d(o);
      out.clear();
      d.Process(r.x, out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * TotalSamples());
}
BENCHMARK(BM_QrsDetectorOnly)->Unit(benchmark::kMillisecond);

void BM_ConditioningFilterOnly(benchmark::State& state) {
  std::vector<float> y;
  Records();
  for (auto _ : state) {
    for (const auto& r : Records()) {
      auto sections = vigil::filters::ButterworthHighPass(2, 0.5, r.fs);
      const auto notch = vigil::filters::Notch(50, 10, r.fs);
      const auto lp = vigil::filters::ButterworthLowPass(2, 40, r.fs);
      sections.insert(sections.end(), notch.begin(), notch.end());
      sections.insert(sections.end(), lp.begin(), lp.end());
      vigil::filters::BiquadCascade f(sections);
      y.resize(r.x.size());
      f.ProcessBlock(r.x, y);
      benchmark::DoNotOptimize(y.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * TotalSamples());
}
BENCHMARK(BM_ConditioningFilterOnly)->Unit(benchmark::kMillisecond);

}  // namespace

// The AF model alone (issue 18): one window's probability, over 256 varied synthetic windows.
void BM_AfModelWindow(benchmark::State& state) {
  const auto model = vigil::ecg::CurrentAfModel();
  std::vector<vigil::ecg::AfModelInputs> windows;
  for (int k = 0; k < 256; ++k) {
    vigil::ecg::AfModelInputs x{};
    for (size_t f = 0; f < x.size(); ++f) x[f] = 0.01 * ((k * 37 + static_cast<int>(f) * 11) % 100);
    x[7] = 50 + (k % 100);  // heart rate
    windows.push_back(x);
  }
  size_t i = 0;
  double sum = 0;
  for (auto _ : state) {
    sum += model->Probability(windows[i++ & 255]);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AfModelWindow);

BENCHMARK_MAIN();
