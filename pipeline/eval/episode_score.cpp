#include "pipeline/eval/episode_score.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace vigil::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Ratio(double num, double den) {
  return den > 0 ? num / den : kNaN;
}

// The raw text of `"key": <value>` in a flat JSON object, or npos-empty when absent.
bool FindField(const std::string& line, const std::string& key, std::string& value) {
  const auto k = line.find("\"" + key + "\"");
  if (k == std::string::npos) return false;
  auto p = line.find(':', k + key.size() + 2);
  if (p == std::string::npos) return false;
  ++p;
  while (p < line.size() && std::isspace(static_cast<unsigned char>(line[p]))) ++p;
  if (p < line.size() && line[p] == '"') {
    const auto e = line.find('"', p + 1);
    if (e == std::string::npos) return false;
    value = line.substr(p + 1, e - p - 1);
    return true;
  }
  auto e = p;
  while (e < line.size() && line[e] != ',' && line[e] != '}') ++e;
  value = line.substr(p, e - p);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
  return true;
}

// Merges overlapping spans of one class into disjoint ones (sorted).
std::vector<std::pair<double, double>> Merged(const std::vector<EpisodeSpan>& spans,
                                              const std::set<std::string>& classes) {
  std::vector<std::pair<double, double>> v;
  for (const auto& s : spans) {
    if (classes.count(s.rhythm) && s.end_s > s.start_s) v.emplace_back(s.start_s, s.end_s);
  }
  std::sort(v.begin(), v.end());
  std::vector<std::pair<double, double>> out;
  for (const auto& [a, b] : v) {
    if (!out.empty() && a <= out.back().second)
      out.back().second = std::max(out.back().second, b);
    else
      out.emplace_back(a, b);
  }
  return out;
}

double Overlap(double a0, double a1, double b0, double b1) {
  return std::max(0.0, std::min(a1, b1) - std::max(a0, b0));
}

std::string Pct(double v) {
  return std::isnan(v) ? "   -  " : fmt::format("{:6.1f}", 100 * v);
}
std::string Num(double v) {
  return std::isnan(v) ? "null" : fmt::format("{:.4f}", v);
}

}  // namespace

std::vector<EpisodeSpan> ParseEpisodeLines(std::istream& in, const std::string& source) {
  std::vector<EpisodeSpan> out;
  std::map<std::pair<std::string, double>, size_t> seen;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string type;
    if (!FindField(line, "type", type) || type != "episode") continue;
    std::string rhythm, start, end;
    if (!FindField(line, "rhythm", rhythm) || !FindField(line, "start", start)) {
      throw std::runtime_error(
          fmt::format("{}:{}: episode line without rhythm or start: {}", source, number, line));
    }
    EpisodeSpan e;
    e.rhythm = rhythm;
    try {
      e.start_s = std::stod(start);
      // An episode still open has no end (null or absent): it lasts until it is closed.
      e.end_s = FindField(line, "end", end) && end != "null" ? std::stod(end) : e.start_s;
    } catch (const std::exception&) {
      throw std::runtime_error(
          fmt::format("{}:{}: episode start/end is not a number: {}", source, number, line));
    }
    const auto key = std::make_pair(e.rhythm, e.start_s);
    if (auto it = seen.find(key); it != seen.end()) {
      out[it->second].end_s = std::max(out[it->second].end_s, e.end_s);
    } else {
      seen[key] = out.size();
      out.push_back(e);
    }
  }
  return out;
}

std::vector<EpisodeSpan> ReadEpisodeFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", path.string()));
  return ParseEpisodeLines(in, path.string());
}

std::vector<EpisodeSpan> ReferenceEpisodes(const std::vector<io::RhythmInterval>& intervals,
                                           double fs) {
  std::vector<EpisodeSpan> out;
  for (const auto& r : intervals) {
    // vfdb writes ventricular fibrillation both as "(VF" and "(VFIB".
    out.push_back({r.rhythm == "VFIB" ? "VF" : r.rhythm, static_cast<double>(r.start) / fs,
                   static_cast<double>(r.end) / fs});
  }
  return out;
}

double EpisodeScore::EpisodeSensitivity() const {
  return Ratio(reference_detected, reference_episodes);
}
double EpisodeScore::EpisodePositivePredictivity() const {
  return Ratio(detected_true, detected_episodes);
}
double EpisodeScore::DurationSensitivity() const {
  return Ratio(overlap_s, reference_s);
}
double EpisodeScore::DurationPositivePredictivity() const {
  return Ratio(overlap_s, detected_s);
}
double EpisodeScore::MedianOnsetDelay() const {
  if (onset_delays_s.empty()) return kNaN;
  auto v = onset_delays_s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

EpisodeScore& EpisodeScore::operator+=(const EpisodeScore& o) {
  reference_episodes += o.reference_episodes;
  reference_detected += o.reference_detected;
  detected_episodes += o.detected_episodes;
  detected_true += o.detected_true;
  reference_s += o.reference_s;
  detected_s += o.detected_s;
  overlap_s += o.overlap_s;
  onset_delays_s.insert(onset_delays_s.end(), o.onset_delays_s.begin(), o.onset_delays_s.end());
  return *this;
}

EpisodeScore ScoreEpisodes(const std::vector<EpisodeSpan>& reference,
                           const std::vector<EpisodeSpan>& detected,
                           const std::set<std::string>& classes,
                           const std::set<std::string>& excluded) {
  // Adjacent reference intervals of the classes in the set (VF then VFL) are one episode.
  const auto ref = Merged(reference, classes);
  const auto det = Merged(detected, classes);
  const auto exclusions = excluded.empty() ? decltype(ref){} : Merged(reference, excluded);
  EpisodeScore s;
  s.reference_episodes = static_cast<int>(ref.size());
  for (const auto& [a, b] : ref) {
    s.reference_s += b - a;
    bool hit = false;
    for (const auto& [c, d] : det) {
      const double o = Overlap(a, b, c, d);
      s.overlap_s += o;
      if (o > 0 && !hit) {
        hit = true;
        s.onset_delays_s.push_back(c - a);
      }
    }
    s.reference_detected += hit;
  }
  for (const auto& [c, d] : det) {
    double cut = 0;  // excluded time inside the detection (exclusions are disjoint once merged)
    for (const auto& [e, f] : exclusions) cut += Overlap(e, f, c, d);
    if (cut >= d - c) continue;  // wholly inside an exclusion: not scored
    ++s.detected_episodes;
    s.detected_s += d - c - cut;
    bool hit = false;
    for (const auto& [a, b] : ref) hit = hit || Overlap(a, b, c, d) > 0;
    s.detected_true += hit;
  }
  return s;
}

EpisodeScore ScoreAfEpisodes(const std::vector<EpisodeSpan>& reference,
                             const std::vector<EpisodeSpan>& detected) {
  return ScoreEpisodes(reference, detected, {"AFIB"}, {"AFL"});
}

double CoveredSeconds(const std::vector<EpisodeSpan>& episodes, const std::string& rhythm,
                      double duration_s) {
  double total = 0;
  for (const auto& [a, b] : Merged(episodes, {rhythm})) total += Overlap(a, b, 0, duration_s);
  return total;
}

double BinaryScore::Sensitivity() const {
  return Ratio(tp, tp + fn);
}
double BinaryScore::Specificity() const {
  return Ratio(tn, tn + fp);
}
double BinaryScore::PositivePredictivity() const {
  return Ratio(tp, tp + fp);
}
double BinaryScore::F1() const {
  return Ratio(2.0 * tp, 2.0 * tp + fp + fn);
}

BinaryScore ScoreCinc(const std::vector<CincRecordResult>& records) {
  BinaryScore s;
  for (const auto& r : records) {
    const bool af = r.reference == 'A';
    if (af && r.called_af)
      ++s.tp;
    else if (af)
      ++s.fn;
    else if (r.called_af)
      ++s.fp;
    else
      ++s.tn;
  }
  return s;
}

std::map<std::string, char> ReadCincReference(const std::filesystem::path& csv) {
  std::ifstream in(csv);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", csv.string()));
  std::map<std::string, char> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (number == 1 && line.rfind("record", 0) == 0)) continue;
    const auto comma = line.find(',');
    if (comma == std::string::npos || comma + 2 != line.size() ||
        std::string("NAO~").find(line[comma + 1]) == std::string::npos) {
      throw std::runtime_error(
          fmt::format("{}:{}: expected record,label: {}", csv.string(), number, line));
    }
    out[line.substr(0, comma)] = line[comma + 1];
  }
  return out;
}

std::string EpisodeTable(const std::string& title, const std::vector<RecordEpisodeScore>& rows) {
  std::ostringstream o;
  o << title << "\n";
  o << fmt::format("{:<8} {:>5} {:>5} {:>7} {:>7} {:>8} {:>8} {:>7} {:>7} {:>8}\n", "record", "ref",
                   "det", "Se%", "+P%", "durSe%", "dur+P%", "ref_s", "det_s", "onset_s");
  EpisodeScore total;
  auto row = [&o](const std::string& name, const EpisodeScore& s) {
    o << fmt::format("{:<8} {:>5} {:>5} {:>7} {:>7} {:>8} {:>8} {:>7.0f} {:>7.0f} {:>8}\n", name,
                     s.reference_episodes, s.detected_episodes, Pct(s.EpisodeSensitivity()),
                     Pct(s.EpisodePositivePredictivity()), Pct(s.DurationSensitivity()),
                     Pct(s.DurationPositivePredictivity()), s.reference_s, s.detected_s,
                     std::isnan(s.MedianOnsetDelay())
                         ? std::string("-")
                         : fmt::format("{:.1f}", s.MedianOnsetDelay()));
  };
  for (const auto& r : rows) {
    row(r.record, r.score);
    total += r.score;
  }
  row("total", total);
  return o.str();
}

std::string EpisodeJson(const std::vector<RecordEpisodeScore>& rows) {
  std::string out = "[";
  EpisodeScore total;
  auto one = [](const std::string& name, const EpisodeScore& s) {
    return fmt::format(
        "{{\"record\":\"{}\",\"reference_episodes\":{},\"detected_episodes\":{},"
        "\"episode_se\":{},\"episode_ppv\":{},\"duration_se\":{},\"duration_ppv\":{},"
        "\"reference_s\":{:.2f},\"detected_s\":{:.2f},\"median_onset_delay_s\":{}}}",
        name, s.reference_episodes, s.detected_episodes, Num(s.EpisodeSensitivity()),
        Num(s.EpisodePositivePredictivity()), Num(s.DurationSensitivity()),
        Num(s.DurationPositivePredictivity()), s.reference_s, s.detected_s,
        Num(s.MedianOnsetDelay()));
  };
  for (const auto& r : rows) {
    out += one(r.record, r.score) + ",";
    total += r.score;
  }
  out += one("total", total) + "]";
  return out;
}

std::string CincTable(const std::vector<CincRecordResult>& records) {
  const auto s = ScoreCinc(records);
  struct Counts {
    int records = 0, called_af = 0, ventricular = 0;
    double hours = 0;
  };
  std::map<char, Counts> by_label;
  for (const auto& r : records) {
    auto& c = by_label[r.reference];
    c.called_af += r.called_af;
    c.ventricular += r.ventricular_episodes;
    c.hours += r.duration_s / 3600;
    ++c.records;
  }
  std::ostringstream o;
  o << "CinC 2017, AF versus rest (record called AF when detected AF covers >= 50 %)\n";
  for (const auto& [label, c] : by_label) {
    // No CinC record is labelled VT or VF: every VT/VF episode on them is a false alarm
    // (the "other rhythm" class may hide a rare true one).
    o << fmt::format(
        "  reference {}: {:4} records, {:4} called AF, {:3} VT/VF episodes ({:.1f} "
        "per hour)\n",
        label, c.records, c.called_af, c.ventricular, c.hours > 0 ? c.ventricular / c.hours : 0.0);
  }
  o << fmt::format("  TP {} FP {} FN {} TN {}  Se {} %  Sp {} %  +P {} %  F1 {:.3f}\n", s.tp, s.fp,
                   s.fn, s.tn, Pct(s.Sensitivity()), Pct(s.Specificity()),
                   Pct(s.PositivePredictivity()), s.F1());
  return o.str();
}

std::string CincJson(const std::vector<CincRecordResult>& records) {
  const auto s = ScoreCinc(records);
  std::string out = fmt::format(
      "{{\"tp\":{},\"fp\":{},\"fn\":{},\"tn\":{},\"se\":{},\"sp\":{},\"ppv\":{},\"f1\":{},"
      "\"records\":[",
      s.tp, s.fp, s.fn, s.tn, Num(s.Sensitivity()), Num(s.Specificity()),
      Num(s.PositivePredictivity()), Num(s.F1()));
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    out += fmt::format(
        "{}{{\"record\":\"{}\",\"reference\":\"{}\",\"duration_s\":{:.2f},"
        "\"af_fraction\":{:.3f},\"called_af\":{},\"ventricular_episodes\":{}}}",
        i ? "," : "", r.record, r.reference == '~' ? std::string("~") : std::string(1, r.reference),
        r.duration_s, r.af_fraction, r.called_af ? "true" : "false", r.ventricular_episodes);
  }
  return out + "]}";
}

}  // namespace vigil::eval
