// Memory per patient (issue 16 item 6): N patients analysed the way the service's lanes do it
// (synthetic ECG + ventilation telemetry, decoded by DecodeTelemetry, PatientAnalysis with every
// registered operator), then the resident set size per patient, active and after an hour of
// silence, and hibernated (limits.evict_idle_after_s). Also the size of each patient's state
// snapshot, which is what an evicted patient costs in the state topic instead of in memory. Not a
// timing benchmark: one line per N.
//   patient_memory_bench [N ...]        default: 1000 10000
#include <fmt/format.h>
#include <malloc.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipeline/analysis/operator_registry.h"
#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/service/hibernation.h"
#include "pipeline/service/synthetic_telemetry.h"
#include "pipeline/service/telemetry_decoder.h"

namespace {

using namespace vigil;

size_t RssBytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

void Measure(int patients, double seconds) {
  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  const auto plan = analysis::AnalysisPlan::Make(config);
  std::unordered_map<std::string, std::unique_ptr<analysis::PatientAnalysis>> live;
  live.reserve(static_cast<size_t>(patients));
  malloc_trim(0);
  const size_t before = RssBytes();
  service::SyntheticOptions options;
  options.patients = patients;
  options.seconds = seconds;
  service::DecodeLimits limits;
  analysis::Outputs out;
  ops::TimeUs last_us = 0;
  service::GenerateTelemetry(options, [&](const v1::TelemetryEnvelope& envelope) {
    auto decoded =
        service::DecodeTelemetry(envelope.patient_id(), envelope.SerializeAsString(), limits);
    auto& record = std::get<service::DecodedRecord>(decoded);
    auto& slot = live[record.patient_id];
    if (!slot) slot = std::make_unique<analysis::PatientAnalysis>(record.patient_id, plan);
    for (const auto& f : record.frames) {
      analysis::FrameView view = service::ViewOf(f);
      slot->OnFrame(view, out);
      last_us = std::max(last_us, f.first_sample_us);
    }
    out.clear();
  });
  malloc_trim(0);
  const size_t active = RssBytes();
  // An hour of silence: the device-offline check runs, buffers stay as they are.
  for (auto& [id, p] : live) {
    p->CheckDevicesOnline(last_us + 3'600'000'000, 300, out);
    out.clear();
  }
  malloc_trim(0);
  const size_t idle = RssBytes();
  size_t snapshot_bytes = 0, compressed_bytes = 0;
  for (auto& [id, p] : live) {
    const std::string bytes = p->Snapshot().SerializeAsString();
    snapshot_bytes += bytes.size();
    uLongf size = compressBound(bytes.size());
    std::string packed(size, '\0');
    compress2(reinterpret_cast<Bytef*>(packed.data()), &size,
              reinterpret_cast<const Bytef*>(bytes.data()), bytes.size(), 1);
    compressed_bytes += size;
  }
  // What the service keeps of a patient idle past limits.evict_idle_after_s.
  std::unordered_map<std::string, std::string> hibernated;
  for (auto& [id, p] : live) {
    hibernated[id] = service::Hibernate(*p);
    p.reset();
  }
  live.clear();
  malloc_trim(0);
  const size_t asleep = RssBytes();
  std::cout << fmt::format(
      "patients={} seconds={} rss_per_active_patient_kb={:.1f} rss_per_idle_patient_kb={:.1f} "
      "snapshot_per_patient_kb={:.1f} compressed_kb={:.1f} rss_per_hibernated_patient_kb={:.1f} "
      "rss_total_mb={:.0f}\n",
      patients, seconds, (active - before) / 1024.0 / patients, (idle - before) / 1024.0 / patients,
      snapshot_bytes / 1024.0 / patients, compressed_bytes / 1024.0 / patients,
      (static_cast<double>(asleep) - static_cast<double>(before)) / 1024.0 / patients,
      idle / 1048576.0);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts;
  for (int i = 1; i < argc; ++i) counts.push_back(std::stoi(argv[i]));
  if (counts.empty()) counts = {1000, 10000};
  const double seconds = std::getenv("SECONDS_EACH") ? std::stod(std::getenv("SECONDS_EACH")) : 120;
  for (const int n : counts) Measure(n, seconds);
  return 0;
}
