// vigil_fuzz_seeds: writes the seed corpora of the fuzz targets (deploy/local/fuzz.sh).
//   vigil_fuzz_seeds <corpus-dir> <shared-data-dir> <golden-dir> <patient-config-dict>
// Into <corpus-dir>/<target>/: synthetic telemetry (service::GenerateTelemetry and the patient
// simulator), patient snapshots and operator states from analysing it, the golden snapshots,
// patient configurations for every parameter key, and cut-downs of the reference recordings
// (WFDB records shortened to a few hundred samples, EDF files to a few data records) so that
// every seed fits the targets' -max_len. A missing shared-data folder only skips those seeds.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/service/synthetic_telemetry.h"
#include "pipeline/service/telemetry_decoder.h"
#include "pipeline/simulate/simulated_telemetry.h"
#include "vigil/v1/patient_config.pb.h"
#include "vigil/v1/state.pb.h"
#include "vigil/v1/telemetry.pb.h"

using namespace vigil;
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxSeed = 60000;  // below the targets' -max_len (65536)

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class Corpus {
 public:
  Corpus(fs::path dir, size_t max_size = kMaxSeed) : dir_(std::move(dir)), max_(max_size) {
    fs::create_directories(dir_);
  }
  void Add(const std::string& name, const std::string& bytes) {
    if (bytes.size() > max_) return;
    fuzz::WriteFile(dir_ / name, bytes);
    ++count_;
  }
  size_t count() const { return count_; }

 private:
  fs::path dir_;
  size_t max_;
  size_t count_ = 0;
};

// --- telemetry and state -----------------------------------------------------------------------

std::vector<v1::TelemetryEnvelope> SyntheticEnvelopes(int drop_every) {
  service::SyntheticOptions o;
  o.patients = 1;
  o.seconds = 40;
  o.drop_every = drop_every;
  std::vector<v1::TelemetryEnvelope> out;
  service::GenerateTelemetry(o, [&](const v1::TelemetryEnvelope& e) { out.push_back(e); });
  return out;
}

std::vector<v1::TelemetryEnvelope> SimulatedEnvelopes(uint64_t seed, int blocks) {
  simulate::CohortOptions o;
  o.patients = 1;
  o.simulation.seed = seed;
  o.simulation.event_rate = 50;
  simulate::SimulatedCohort cohort(o);
  std::vector<v1::TelemetryEnvelope> out;
  std::vector<sim::TruthEvent> truth;
  for (int b = 0; b < blocks; ++b) {
    v1::TelemetryEnvelope e;
    if (cohort.NextEnvelope(0, e, truth)) out.push_back(std::move(e));
  }
  return out;
}

void TelemetrySeeds(const std::vector<std::vector<v1::TelemetryEnvelope>>& streams, Corpus& c) {
  int n = 0;
  for (const auto& envelopes : streams) {
    for (size_t i = 0; i < envelopes.size(); i += 3) {
      std::vector<std::string> parts;
      for (size_t j = i; j < std::min(envelopes.size(), i + 3); ++j) {
        parts.push_back(envelopes[j].SerializeAsString());
      }
      c.Add(fmt::format("record-{:03}", n++), parts.front());
      c.Add(fmt::format("records-{:03}", n++), fuzz::JoinInput(parts));
    }
  }
}

void SnapshotSeeds(const std::vector<std::vector<v1::TelemetryEnvelope>>& streams,
                   const fs::path& golden, Corpus& c) {
  const auto plan = fuzz::DefaultPlan();
  const auto operators = analysis::Operators();
  const auto selector = [&](std::string_view name) -> int {
    for (size_t i = 0; i < operators.size(); ++i) {
      if (operators[i].name == name) return 0x80 | static_cast<int>(i);
    }
    return -1;
  };
  int n = 0;
  for (const auto& envelopes : streams) {
    std::optional<analysis::PatientAnalysis> patient;
    analysis::Outputs out;
    for (size_t i = 0; i < envelopes.size(); ++i) {
      auto decoded =
          service::DecodeTelemetry(envelopes[i].patient_id(), envelopes[i].SerializeAsString(), {});
      auto* record = std::get_if<service::DecodedRecord>(&decoded);
      if (record == nullptr) continue;
      if (!patient) patient.emplace(record->patient_id, plan);
      for (const auto& e : record->events) patient->OnDeviceEvent(e.device_id, e.view, out);
      for (const auto& f : record->frames) {
        patient->OnFrame(service::ViewOf(f), out);
      }
      if (i % 10 != 9) continue;
      const auto snapshot = patient->Snapshot();
      c.Add(fmt::format("patient-{:03}", n++), std::string(1, '\0') + snapshot.SerializeAsString());
      for (const auto& os : snapshot.operators()) {
        const int s = selector(os.operator_name());
        if (s >= 0)
          c.Add(fmt::format("operator-{:03}", n++),
                std::string(1, static_cast<char>(s)) + os.state());
      }
    }
  }
  // Snapshots written by earlier releases (tests/data/golden/README.md).
  const fs::path ecg = golden / "ecg_arrhythmia_v5.snapshot";
  if (fs::exists(ecg)) {
    c.Add("golden-ecg-arrhythmia-v5",
          std::string(1, static_cast<char>(selector("ecg.arrhythmia"))) + ReadAll(ecg));
  }
}

void PatientConfigSeeds(const fs::path& dict, Corpus& c) {
  v1::PatientConfig base;
  base.set_patient_id("p");
  base.set_version(1);
  c.Add("empty", base.SerializeAsString());
  v1::PatientConfig zone = base;
  zone.set_time_zone("Europe/Oslo");
  c.Add("zone", zone.SerializeAsString());
  std::ifstream in(dict);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.size() < 3 || line.front() != '"' || line.find('.') == std::string::npos) continue;
    const std::string key = line.substr(1, line.size() - 2);
    for (double value : {1.0, 30.0}) {
      v1::PatientConfig pc = base;
      (*pc.mutable_parameters())[key] = value;
      if (n % 5 == 0) pc.set_time_zone("America/New_York");
      c.Add(fmt::format("key-{:03}", n++), pc.SerializeAsString());
    }
  }
}

// --- WFDB ----------------------------------------------------------------------------------------

// `record` cut to `frames` samples per signal, all signals in one file named "rec.dat" (its
// signals must share one file), annotations cut to `atr_bytes`: the target's three parts.
std::optional<std::string> WfdbSeed(const fs::path& record, int64_t frames, size_t atr_bytes) {
  const std::string header = ReadAll(fs::path(record.string() + ".hea"));
  if (header.empty()) return std::nullopt;
  std::istringstream in(header);
  std::string line, out, data_file;
  bool record_line = false;
  int64_t byte_offset = 0, bytes_per_frame = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream words_in(line);
    std::vector<std::string> words;
    for (std::string w; words_in >> w;) words.push_back(w);
    if (words.empty() || words[0][0] == '#') {
      out += line + "\n";
      continue;
    }
    if (!record_line) {
      record_line = true;
      words[0] = "rec";
      if (words.size() > 3) words[3] = std::to_string(frames);
    } else {
      if (!data_file.empty() && words[0] != data_file) return std::nullopt;
      data_file = words[0];
      words[0] = "rec.dat";
      const auto plus = words[1].find('+');
      const int format = std::stoi(words[1].substr(0, plus));
      if (plus != std::string::npos) byte_offset = std::stoll(words[1].substr(plus + 1));
      bytes_per_frame += format == 16 ? 4 : 3;  // doubled: 212 packs two samples in 3 bytes
    }
    std::string joined;
    for (const auto& w : words) joined += (joined.empty() ? "" : " ") + w;
    out += joined + "\n";
  }
  if (data_file.empty()) return std::nullopt;
  std::string signal = ReadAll(record.parent_path() / data_file);
  signal.resize(std::min<size_t>(
      signal.size(), static_cast<size_t>(byte_offset + (frames * bytes_per_frame + 1) / 2)));
  std::string atr = ReadAll(fs::path(record.string() + ".atr"));
  atr.resize(std::min(atr.size(), atr_bytes & ~size_t{1}));
  return fuzz::JoinInput(atr.empty() ? std::vector<std::string>{out, signal}
                                     : std::vector<std::string>{out, signal, atr});
}

void WfdbSeeds(const fs::path& data, Corpus& c) {
  int n = 0;
  for (const char* folder : {"mitdb", "vfdb", "cinc2015", "cinc2017", "cinc2017-train"}) {
    if (!fs::is_directory(data / folder)) continue;
    std::vector<fs::path> headers;
    for (const auto& e : fs::directory_iterator(data / folder)) {
      if (e.path().extension() == ".hea") headers.push_back(e.path());
    }
    std::sort(headers.begin(), headers.end());
    for (size_t i = 0; i < std::min<size_t>(headers.size(), 3); ++i) {
      const fs::path record = headers[i].parent_path() / headers[i].stem();
      for (int64_t frames : {200, 2000}) {
        if (auto seed = WfdbSeed(record, frames, frames * 2))
          c.Add(fmt::format("record-{:03}", n++), *seed);
      }
    }
  }
}

// --- EDF / ResMed --------------------------------------------------------------------------------

long long Field(const std::string& b, size_t at, size_t width) {
  long long v = 0;
  std::string t = b.substr(at, width);
  t.erase(t.find_last_not_of(' ') + 1);
  t.erase(0, t.find_first_not_of(' '));
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

// The EDF file cut to as many whole data records as fit `limit` bytes (header field patched);
// nullopt when not even the header and one record fit.
std::optional<std::string> CutEdf(const fs::path& path, size_t limit) {
  std::string b = ReadAll(path);
  if (b.size() < 256) return std::nullopt;
  if (b.size() <= limit) return b;
  const long long header = Field(b, 184, 8), ns = Field(b, 252, 4);
  if (ns < 1 || header != 256 * (ns + 1) || b.size() < static_cast<size_t>(header))
    return std::nullopt;
  long long samples = 0;
  for (long long i = 0; i < ns; ++i)
    samples += Field(b, static_cast<size_t>(256 + 216 * ns + i * 8), 8);
  const long long record = 2 * samples;
  if (record <= 0) return std::nullopt;
  const long long records = (static_cast<long long>(limit) - header) / record;
  if (records < 1) return std::nullopt;
  b.resize(static_cast<size_t>(header + records * record));
  std::string count = std::to_string(records);
  count.resize(8, ' ');
  b.replace(236, 8, count);
  return b;
}

// First file of each kind in each ResMed card (kind = last 3 letters of the stem).
std::map<std::string, std::vector<fs::path>> ResmedFiles(const fs::path& data) {
  std::map<std::string, std::vector<fs::path>> out;
  if (!fs::is_directory(data / "resmed")) return out;
  std::vector<fs::path> cards;
  for (const auto& e : fs::directory_iterator(data / "resmed")) cards.push_back(e.path());
  std::sort(cards.begin(), cards.end());
  for (const auto& card : cards) {
    std::map<std::string, fs::path> first;
    for (const auto& e : fs::recursive_directory_iterator(card / "DATALOG")) {
      if (e.path().extension() != ".edf") continue;
      const std::string stem = e.path().stem().string();
      const std::string kind = stem.substr(stem.size() - 3);
      if (!first.count(kind) || e.path() < first[kind]) first[kind] = e.path();
    }
    for (const auto& [kind, path] : first) out[kind].push_back(path);
    out["STR"].push_back(card / "STR.edf");
  }
  return out;
}

void EdfSeeds(const fs::path& data, Corpus& c) {
  int n = 0;
  for (const auto& [kind, paths] : ResmedFiles(data)) {
    for (const auto& p : paths) {
      for (size_t limit : {size_t{4000}, size_t{20000}, kMaxSeed}) {
        if (auto seed = CutEdf(p, limit)) c.Add(fmt::format("{}-{:03}", kind, n++), *seed);
      }
    }
  }
}

void ResmedSeeds(const fs::path& data, Corpus& c) {
  const auto files = ResmedFiles(data);
  if (!files.count("STR")) return;
  const std::map<std::string, char> selector = {{"BRP", 0}, {"PLD", 1}, {"SAD", 2}, {"EVE", 3}};
  int n = 0;
  for (size_t card = 0; card < files.at("STR").size(); ++card) {
    const auto str = CutEdf(files.at("STR")[card], 30000);
    if (!str) continue;
    c.Add(fmt::format("str-only-{:03}", n++), std::string(1, '\0') + *str);
    for (const auto& [kind, sel] : selector) {
      if (!files.count(kind) || files.at(kind).size() <= card) continue;
      const auto datalog =
          CutEdf(files.at(kind)[card], kMaxSeed - 2 - fuzz::kSeparator.size() - str->size());
      if (!datalog) continue;
      for (char flags : {char{0}, char{4}}) {
        c.Add(fmt::format("{}-{:03}", kind, n++),
              std::string(1, static_cast<char>(sel | flags)) + fuzz::JoinInput({*str, *datalog}));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr,
                 "usage: %s <corpus-dir> <shared-data-dir> <golden-dir> <patient-config-dict>\n",
                 argv[0]);
    return 2;
  }
  const fs::path out = argv[1], data = argv[2], golden = argv[3], dict = argv[4];
  const std::vector<std::vector<v1::TelemetryEnvelope>> streams = {
      SyntheticEnvelopes(0), SyntheticEnvelopes(4), SimulatedEnvelopes(1, 30),
      SimulatedEnvelopes(7, 30)};

  Corpus telemetry(out / "fuzz_telemetry");
  TelemetrySeeds(streams, telemetry);
  Corpus snapshot(out / "fuzz_snapshot");
  SnapshotSeeds(streams, golden, snapshot);
  Corpus config(out / "fuzz_patient_config");
  PatientConfigSeeds(dict, config);
  if (!fs::is_directory(data)) {
    std::fprintf(stderr, "vigil_fuzz_seeds: %s missing: no WFDB / EDF / ResMed seeds\n",
                 data.c_str());
  }
  Corpus wfdb(out / "fuzz_wfdb");
  WfdbSeeds(data, wfdb);
  Corpus edf(out / "fuzz_edf");
  EdfSeeds(data, edf);
  Corpus resmed(out / "fuzz_resmed");
  ResmedSeeds(data, resmed);
  std::printf(
      "seeds: telemetry %zu, snapshot %zu, patient_config %zu, wfdb %zu, edf %zu, resmed %zu\n",
      telemetry.count(), snapshot.count(), config.count(), wfdb.count(), edf.count(),
      resmed.count());
  return 0;
}
