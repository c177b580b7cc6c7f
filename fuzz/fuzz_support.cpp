#include "fuzz/fuzz_support.h"

#include <google/protobuf/stubs/logging.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numbers>
#include <set>
#include <system_error>

#include "pipeline/analysis/operator_registry.h"

namespace vigil::fuzz {
namespace {
// libprotobuf logs every string field with invalid UTF-8 it parses (most mutated inputs);
// ParseFromString's result says the same, so the logs are only noise in the fuzz output.
const bool kProtobufQuiet = (google::protobuf::SetLogHandler(nullptr), true);
}  // namespace

std::vector<std::string_view> SplitInput(std::string_view data, size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t at = data.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(data.substr(0, at));
    data.remove_prefix(at + kSeparator.size());
  }
  parts.push_back(data);
  return parts;
}

std::string JoinInput(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += kSeparator;
    out += parts[i];
  }
  return out;
}

namespace {
std::filesystem::path& ScratchRoot() {
  static std::filesystem::path root;
  return root;
}
void RemoveScratch() {
  std::error_code ec;
  if (!ScratchRoot().empty()) std::filesystem::remove_all(ScratchRoot(), ec);
}
}  // namespace

const std::filesystem::path& ScratchDir(std::string_view name) {
  auto& root = ScratchRoot();
  if (root.empty()) {
    root = std::filesystem::temp_directory_path() /
           ("vigil-fuzz-" + std::string(name) + "-" + std::to_string(getpid()));
    std::filesystem::create_directories(root);
    std::atexit(RemoveScratch);
  }
  return root;
}

void WriteFile(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Finding("cannot write the scratch file " + path.string());
}

analysis::AnalysisConfig DefaultAnalysisConfig() {
  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  return config;
}

std::shared_ptr<const analysis::AnalysisPlan> DefaultPlan() {
  static const auto plan = analysis::AnalysisPlan::Make(DefaultAnalysisConfig());
  return plan;
}

namespace {

// Rate and a plausible physical value at time `t` (seconds) for each signal.
double RateOf(ops::Signal s) {
  switch (s) {
    case ops::Signal::kEcg:
      return 250;
    case ops::Signal::kPlethysmogram:
    case ops::Signal::kArterialPressure:
      return 125;
    case ops::Signal::kAirwayPressure:
    case ops::Signal::kFlow:
    case ops::Signal::kCo2Waveform:
      return 25;
    default:
      return 1;
  }
}

float ValueOf(ops::Signal s, double t) {
  const double beat = std::fmod(t, 0.8);                         // 75 bpm
  const double breath = std::sin(2 * std::numbers::pi * t / 4);  // 15 breaths/min
  switch (s) {
    case ops::Signal::kEcg:
      return static_cast<float>(1.2 * std::exp(-0.5 * std::pow((beat - 0.4) / 0.012, 2)));
    case ops::Signal::kPlethysmogram:
      return static_cast<float>(std::sin(2 * std::numbers::pi * t / 0.8));
    case ops::Signal::kArterialPressure:
      return static_cast<float>(90 + 30 * std::sin(2 * std::numbers::pi * t / 0.8));
    case ops::Signal::kAirwayPressure:
      return static_cast<float>(8 + 4 * (breath > 0));
    case ops::Signal::kFlow:
      return static_cast<float>(30 * breath);
    case ops::Signal::kCo2Waveform:
      return static_cast<float>(breath < 0 ? 40 : 0);
    case ops::Signal::kTranscutaneousCo2:
      return 45;
    case ops::Signal::kSpo2:
      return 95;
    case ops::Signal::kLeak:
      return 10;
    case ops::Signal::kPulseRate:
      return 75;
    case ops::Signal::kTidalVolume:
      return 450;
    case ops::Signal::kRespiratoryRate:
      return 15;
    case ops::Signal::kMinuteVentilation:
      return 7;
    case ops::Signal::kUnknown:
      break;
  }
  return 0;
}

}  // namespace

void FeedSyntheticSeconds(analysis::PatientAnalysis& patient, const analysis::AnalysisPlan& plan,
                          ops::TimeUs start_us, int seconds, uint64_t* sequence,
                          analysis::Outputs& out) {
  std::set<ops::Signal> signals;
  for (const auto& op : plan.operators()) {
    for (ops::Signal s : op->inputs()) signals.insert(s);
  }
  std::vector<float> values;
  for (int second = 0; second < seconds; ++second) {
    ++*sequence;
    for (ops::Signal s : signals) {
      const double rate = RateOf(s);
      values.resize(static_cast<size_t>(rate));
      for (size_t i = 0; i < values.size(); ++i) values[i] = ValueOf(s, second + i / rate);
      analysis::FrameView frame;
      frame.device_id = s == ops::Signal::kEcg ? "fuzz-ecg" : "fuzz-niv";
      frame.signal = s;
      frame.lead = s == ops::Signal::kEcg ? 2 : 0;
      frame.sequence = *sequence;
      frame.first_sample_us = start_us + second * ops::kMicrosPerSecond;
      frame.sample_rate_hz = rate;
      frame.values = values;
      patient.OnFrame(frame, out);
    }
  }
}

std::string ComparableSnapshot(const v1::PatientStateSnapshot& snapshot) {
  v1::PatientStateSnapshot copy = snapshot;
  copy.clear_snapshot_wall_time_us();
  std::string bytes;
  copy.SerializeToString(&bytes);
  return bytes;
}

void Finding(const std::string& what) {
  std::fprintf(stderr, "==vigil-fuzz== FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace vigil::fuzz
