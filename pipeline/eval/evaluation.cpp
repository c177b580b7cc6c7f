#include "pipeline/eval/evaluation.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <cmath>
#include <fstream>

#include "operators/io/wfdb_record.h"
#include "pipeline/eval/json_lines.h"

namespace vigil::eval {

std::vector<TestBeat> ReadReplayBeats(const std::filesystem::path& path, double fs) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("cannot open {}", path.string()));
  std::vector<TestBeat> beats;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    JsonFields fields;
    try {
      fields = ParseJsonObjectLine(line);
    } catch (const JsonError& e) {
      throw JsonError(fmt::format("{}:{}: {}", path.string(), line_no, e.what()));
    }
    if (StringField(fields, "type") != "beat") continue;
    const auto t = NumberField(fields, "t");
    const auto label = StringField(fields, "label");
    if (!t || !label || label->size() != 1) {
      throw JsonError(
          fmt::format("{}:{}: beat line without numeric \"t\" and one-letter "
                      "\"label\"",
                      path.string(), line_no));
    }
    beats.push_back(TestBeat{static_cast<int64_t>(std::llround(*t * fs)), (*label)[0]});
  }
  return beats;
}

RecordEvaluation EvaluateRecordBeats(const std::string& name,
                                     const std::vector<io::WfdbAnnotation>& reference,
                                     const std::vector<TestBeat>& test, double fs,
                                     const BeatScoringOptions& options) {
  RecordEvaluation r;
  r.record = name;
  r.paced = IsPacedRecord(name);
  BeatScoringOptions all = options;
  all.start_s = 0;
  BeatScoringOptions late = options;
  late.start_s = 300;
  r.beats.all = ScoreBeats(reference, test, fs, all);
  r.beats.after_5_min = ScoreBeats(reference, test, fs, late);
  return r;
}

RecordEvaluation EvaluateRecord(const std::filesystem::path& replay,
                                const std::filesystem::path& record,
                                const BeatScoringOptions& options) {
  const auto header = io::ReadWfdbHeader(record);
  const auto reference = io::ReadWfdbAnnotations(record);
  const auto beats = ReadReplayBeats(replay, header.sampling_frequency);
  return EvaluateRecordBeats(record.filename().string(), reference, beats,
                             header.sampling_frequency, options);
}

void AddRecord(EvaluationReport& report, RecordEvaluation record) {
  if (!record.paced) {
    report.gross_beats.all += record.beats.all;
    report.gross_beats.after_5_min += record.beats.after_5_min;
  }
  report.records.push_back(std::move(record));
}

namespace {

std::string Pct(double v) {
  return std::isnan(v) ? "    -  " : fmt::format("{:7.2f}", v);
}

std::string BeatRow(const std::string& name, const BeatEvaluation& b) {
  const auto& a = b.all;
  const auto& l = b.after_5_min;
  return fmt::format(
      "{:<8} {:>6} {:>5} {:>5} {} {} | {:>5} {:>5} {} {} | {:>5} {:>5} {:>5} {} {}\n", name,
      a.ref_beats, a.fn, a.fp, Pct(a.Se()), Pct(a.PPlus()), l.fn, l.fp, Pct(l.Se()), Pct(l.PPlus()),
      a.v_tp, a.v_fn, a.v_fp, Pct(a.VSe()), Pct(a.VPPlus()));
}

std::string CountsJson(const BeatCounts& c) {
  return fmt::format(
      "{{\"ref_beats\":{},\"tp\":{},\"fn\":{},\"fp\":{},\"se\":{},\"ppv\":{},"
      "\"v_tp\":{},\"v_fn\":{},\"v_fp\":{},\"v_se\":{},\"v_ppv\":{}}}",
      c.ref_beats, c.tp, c.fn, c.fp, JsonNumber(c.Se()), JsonNumber(c.PPlus()), c.v_tp, c.v_fn,
      c.v_fp, JsonNumber(c.VSe()), JsonNumber(c.VPPlus()));
}

std::string BeatsJson(const BeatEvaluation& b) {
  return fmt::format("{{\"all\":{},\"after_5_min\":{}}}", CountsJson(b.all),
                     CountsJson(b.after_5_min));
}

}  // namespace

void PrintReport(const EvaluationReport& report, std::ostream& out) {
  fmt::print(out,
             "QRS detection and ventricular beats (ANSI/AAMI EC57, 150 ms match window; "
             "'*' = paced, not in gross)\n");
  fmt::print(out,
             "{:<8} {:>6} {:>5} {:>5} {:>7} {:>7} | {:>5} {:>5} {:>7} {:>7} | {:>5} {:>5} {:>5} "
             "{:>7} {:>7}\n",
             "record", "beats", "FN", "FP", "Se%", "+P%", "FN5", "FP5", "Se5%", "+P5%", "Vtp",
             "Vfn", "Vfp", "VSe%", "V+P%");
  for (const auto& r : report.records) {
    out << BeatRow(r.record + (r.paced ? "*" : ""), r.beats);
  }
  out << BeatRow("gross", report.gross_beats);
  fmt::print(out, "(FN5/FP5/Se5/+P5: without the first 5 minutes)\n");
}

std::string ReportJson(const EvaluationReport& report) {
  std::string s =
      "{\"method\":\"ANSI/AAMI EC57 beat-by-beat, 150 ms match window, paced records "
      "excluded from gross\",\"records\":[";
  for (size_t i = 0; i < report.records.size(); ++i) {
    const auto& r = report.records[i];
    if (i) s += ",";
    s += fmt::format("{{\"record\":{},\"paced\":{},\"beats\":{}}}", JsonQuote(r.record),
                     r.paced ? "true" : "false", BeatsJson(r.beats));
  }
  s += fmt::format("],\"gross\":{{\"beats\":{}}}}}\n", BeatsJson(report.gross_beats));
  return s;
}

}  // namespace vigil::eval
