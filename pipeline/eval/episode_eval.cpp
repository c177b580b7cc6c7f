#include "pipeline/eval/episode_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include "operators/io/wfdb_annotation.h"
#include "operators/io/wfdb_record.h"

namespace vigil::eval {

EpisodeEvaluation EvaluateEpisodes(const std::filesystem::path& replays,
                                   const std::filesystem::path& records,
                                   const std::filesystem::path& cinc_reference) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(replays)) {
    if (entry.path().extension() == ".jsonl") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error(fmt::format("no .jsonl files in {}", replays.string()));
  std::map<std::string, char> labels;
  if (!cinc_reference.empty()) labels = ReadCincReference(cinc_reference);

  EpisodeEvaluation ev;
  for (const auto& file : files) {
    const std::string name = file.stem().string();
    const auto record = records / name;
    const auto detected = ReadEpisodeFile(file);
    for (const auto& e : detected) {
      ++ev.counts[name][e.rhythm];
      ++ev.counts[""][e.rhythm];
    }
    const auto header = io::ReadWfdbHeader(record);
    const double fs = header.sampling_frequency;
    if (!cinc_reference.empty()) {
      const auto it = labels.find(name);
      if (it == labels.end()) {
        throw std::runtime_error(fmt::format("{} is not in {}", name, cinc_reference.string()));
      }
      CincRecordResult r;
      r.record = name;
      r.reference = it->second;
      r.duration_s = static_cast<double>(header.num_samples) / fs;
      r.af_fraction = r.duration_s > 0 ? CoveredSeconds(detected, "AFIB", r.duration_s) /
                                             r.duration_s : 0;
      r.called_af = r.af_fraction >= 0.5;
      for (const auto& e : detected) {
        r.ventricular_episodes += e.rhythm == "VT" || e.rhythm == "VF" || e.rhythm == "VFL";
      }
      ev.cinc.push_back(r);
      continue;
    }
    const auto reference =
        ReferenceEpisodes(io::RhythmIntervals(io::ReadWfdbAnnotations(record), header.num_samples),
                          fs);
    ev.af.push_back({name, ScoreAfEpisodes(reference, detected)});
    ev.vf.push_back({name, ScoreEpisodes(reference, detected, {"VF", "VFL"})});
    ev.vt.push_back({name, ScoreEpisodes(reference, detected, {"VT"})});
  }
  return ev;
}

void PrintEpisodeEvaluation(const EpisodeEvaluation& ev, std::ostream& out) {
  if (!ev.af.empty()) {
    out << EpisodeTable("AF episodes (AFIB)", ev.af) << "\n"
        << EpisodeTable("VF episodes (VF + VFL)", ev.vf) << "\n"
        << EpisodeTable("VT episodes", ev.vt) << "\n";
  }
  if (!ev.cinc.empty()) out << CincTable(ev.cinc) << "\n";
  out << "Detected episodes per record:\n";
  for (const auto& [record, kinds] : ev.counts) {
    std::string line = fmt::format("  {:<8}", record.empty() ? "total" : record);
    for (const auto& [kind, n] : kinds) line += fmt::format(" {}={}", kind, n);
    out << line << "\n";
  }
}

std::string EpisodeEvaluationJson(const EpisodeEvaluation& ev) {
  std::string counts = "{";
  bool first = true;
  for (const auto& [record, kinds] : ev.counts) {
    counts += fmt::format("{}\"{}\":{{", first ? "" : ",", record.empty() ? "total" : record);
    first = false;
    bool k_first = true;
    for (const auto& [kind, n] : kinds) {
      counts += fmt::format("{}\"{}\":{}", k_first ? "" : ",", kind, n);
      k_first = false;
    }
    counts += "}";
  }
  counts += "}";
  return fmt::format("{{\"af\":{},\"vf\":{},\"vt\":{},\"cinc\":{},\"episodes\":{}}}",
                     ev.af.empty() ? "null" : EpisodeJson(ev.af),
                     ev.vf.empty() ? "null" : EpisodeJson(ev.vf),
                     ev.vt.empty() ? "null" : EpisodeJson(ev.vt),
                     ev.cinc.empty() ? "null" : CincJson(ev.cinc), counts);
}

}  // namespace vigil::eval
