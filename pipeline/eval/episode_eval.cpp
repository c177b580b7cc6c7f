#include "pipeline/eval/episode_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include "operators/io/wfdb_annotation.h"
#include "operators/io/wfdb_record.h"
#include "pipeline/eval/json_lines.h"

namespace vigil::eval {

namespace {

FalseVentricular CountFalseVentricular(const std::string& name,
                                       const std::vector<EpisodeSpan>& detected,
                                       const std::vector<EpisodeSpan>& reference,
                                       const std::vector<io::WfdbAnnotation>& annotations,
                                       double fs, double duration_s) {
  constexpr double kMarginS = 2;
  std::vector<std::pair<double, double>> allowed;
  for (const auto& r : reference) {
    if (r.rhythm == "VT" || r.rhythm == "VF" || r.rhythm == "VFL" || r.rhythm == "IVR" ||
        r.rhythm == "ASYS") {
      allowed.emplace_back(r.start_s - kMarginS, r.end_s + kMarginS);
    }
  }
  // Runs of >= 3 consecutive ventricular beats (AAMI class V).
  int run = 0;
  double run_start = 0, last = 0;
  auto close_run = [&] {
    if (run >= 3) allowed.emplace_back(run_start - kMarginS, last + kMarginS);
    run = 0;
  };
  for (const auto& a : annotations) {
    if (!a.IsBeat()) continue;
    const double t = static_cast<double>(a.sample) / fs;
    if (a.AamiClass() == 'V') {
      if (run == 0) run_start = t;
      ++run;
      last = t;
    } else {
      close_run();
    }
  }
  close_run();
  FalseVentricular f;
  f.record = name;
  f.hours = duration_s / 3600;
  for (const auto& e : detected) {
    if (e.rhythm != "VT" && e.rhythm != "VF" && e.rhythm != "VFL") continue;
    ++f.detected;
    const bool explained = std::any_of(allowed.begin(), allowed.end(), [&](const auto& iv) {
      return e.start_s <= iv.second && e.end_s >= iv.first;
    });
    f.false_alarms += !explained;
  }
  return f;
}

}  // namespace

EpisodeEvaluation EvaluateEpisodes(const std::filesystem::path& replays,
                                   const std::filesystem::path& records,
                                   const std::filesystem::path& cinc_reference) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(replays)) {
    if (entry.path().extension() == ".jsonl") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw std::runtime_error(fmt::format("no .jsonl files in {}", replays.string()));
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
      r.af_fraction =
          r.duration_s > 0 ? CoveredSeconds(detected, "AFIB", r.duration_s) / r.duration_s : 0;
      r.called_af = r.af_fraction >= 0.5;
      for (const auto& e : detected) {
        r.ventricular_episodes += e.rhythm == "VT" || e.rhythm == "VF" || e.rhythm == "VFL";
      }
      ev.cinc.push_back(r);
      continue;
    }
    const auto annotations = io::ReadWfdbAnnotations(record);
    const auto reference =
        ReferenceEpisodes(io::RhythmIntervals(annotations, header.num_samples), fs);
    ev.false_ventricular.push_back(CountFalseVentricular(
        name, detected, reference, annotations, fs, static_cast<double>(header.num_samples) / fs));
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
  if (!ev.false_ventricular.empty()) {
    out << "False ventricular alarms (VT/VF/VFL episodes overlapping no reference VT, VF, VFL, "
           "IVR, asystole or run of >= 3 V beats, +-2 s)\n";
    out << fmt::format("{:<8} {:>8} {:>6} {:>8} {:>8}\n", "record", "VT/VF", "false", "hours",
                       "per_h");
    FalseVentricular total;
    total.record = "total";
    for (const auto& f : ev.false_ventricular) {
      out << fmt::format("{:<8} {:>8} {:>6} {:>8.2f} {:>8.2f}\n", f.record, f.detected,
                         f.false_alarms, f.hours, f.false_alarms / f.hours);
      total.detected += f.detected;
      total.false_alarms += f.false_alarms;
      total.hours += f.hours;
    }
    out << fmt::format("{:<8} {:>8} {:>6} {:>8.2f} {:>8.2f}\n\n", total.record, total.detected,
                       total.false_alarms, total.hours, total.false_alarms / total.hours);
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
  int false_alarms = 0;
  double hours = 0;
  for (const auto& f : ev.false_ventricular) {
    false_alarms += f.false_alarms;
    hours += f.hours;
  }
  const std::string false_ventricular =
      ev.false_ventricular.empty()
          ? "null"
          : fmt::format("{{\"false\":{},\"hours\":{},\"per_hour\":{}}}", false_alarms,
                        JsonNumber(hours), JsonNumber(false_alarms / hours));
  return fmt::format(
      "{{\"false_ventricular\":{},\"af\":{},\"vf\":{},\"vt\":{},\"cinc\":{},"
      "\"episodes\":{}}}",
      false_ventricular, ev.af.empty() ? "null" : EpisodeJson(ev.af),
      ev.vf.empty() ? "null" : EpisodeJson(ev.vf), ev.vt.empty() ? "null" : EpisodeJson(ev.vt),
      ev.cinc.empty() ? "null" : CincJson(ev.cinc), counts);
}

}  // namespace vigil::eval
