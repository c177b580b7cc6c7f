#include "pipeline/eval/alarm_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "operators/io/wfdb_record.h"
#include "pipeline/eval/json_lines.h"

namespace vigil::eval {
namespace {

const std::vector<std::string>& ConditionsOf(const std::string& alarm) {
  static const std::map<std::string, std::vector<std::string>> kConditions = {
      {"Asystole", {"CONDITION_ASYSTOLE"}},
      {"Bradycardia", {"CONDITION_BRADYCARDIA", "CONDITION_EXTREME_BRADYCARDIA"}},
      {"Tachycardia", {"CONDITION_TACHYCARDIA", "CONDITION_EXTREME_TACHYCARDIA"}},
      {"Ventricular_Tachycardia", {"CONDITION_VENTRICULAR_TACHYCARDIA"}},
      {"Ventricular_Flutter_Fib", {"CONDITION_VENTRICULAR_FIBRILLATION"}}};
  const auto it = kConditions.find(alarm);
  if (it == kConditions.end()) {
    throw std::invalid_argument(
        fmt::format("alarm type '{}': not one of Asystole, Bradycardia, Tachycardia, "
                    "Ventricular_Tachycardia, Ventricular_Flutter_Fib",
                    alarm));
  }
  return it->second;
}

double Percent(int num, int den) {
  return den > 0 ? 100.0 * num / den : std::numeric_limits<double>::quiet_NaN();
}

std::string Cell(double v) {
  return std::isnan(v) ? "-" : fmt::format("{:.1f}", v);
}

}  // namespace

double AlarmCounts::tpr() const {
  return Percent(tp, tp + fn);
}
double AlarmCounts::tnr() const {
  return Percent(tn, tn + fp);
}
double AlarmCounts::score() const {
  return Percent(tp + tn, tp + tn + fp + 5 * fn);
}

std::vector<std::pair<std::string, AlarmCounts>> AlarmEvaluation::ByType() const {
  std::map<std::string, AlarmCounts> by_type;
  AlarmCounts all;
  for (const auto& r : records) {
    for (AlarmCounts* c : {&by_type[r.alarm], &all}) {
      if (r.truth) {
        (r.alarmed ? c->tp : c->fn) += 1;
      } else {
        (r.alarmed ? c->fp : c->tn) += 1;
      }
    }
  }
  std::vector<std::pair<std::string, AlarmCounts>> rows(by_type.begin(), by_type.end());
  rows.emplace_back("all", all);
  return rows;
}

bool AlarmActiveAtEnd(std::istream& in, const std::string& source, const std::string& alarm,
                      double end_s, double window_s) {
  const auto& conditions = ConditionsOf(alarm);
  // Raised-at time per condition while an alert of it is active.
  std::map<std::string, double> active_since;
  std::optional<double> origin_us;
  std::string line;
  int number = 0;
  const double from_s = end_s - window_s;
  auto parse = [&](std::string_view text) {
    try {
      return ParseJsonObjectLine(text);
    } catch (const JsonError& e) {
      throw std::runtime_error(fmt::format("{}:{}: {}", source, number, e.what()));
    }
  };
  while (std::getline(in, line)) {
    ++number;
    if (line.rfind("{\"type\":\"replay\"", 0) == 0) {
      origin_us = NumberField(parse(line), "origin_us");
      continue;
    }
    // {"type":"alert","alert":{...}}: the alert object is the line less its outer braces.
    constexpr std::string_view kAlert = "{\"type\":\"alert\",\"alert\":";
    if (line.rfind(kAlert, 0) != 0) continue;
    if (!origin_us) {
      throw std::runtime_error(fmt::format(
          "{}:{}: an alert before the replay line that gives the time origin (replay the "
          "record again with this version of vigil)",
          source, number));
    }
    const std::string_view body =
        std::string_view(line).substr(kAlert.size(), line.size() - kAlert.size() - 1);
    const auto fields = parse(body);
    const auto condition = StringField(fields, "condition");
    const auto state = StringField(fields, "state");
    const auto event_us = StringField(fields, "eventTimeUs");  // int64: a string in JSON
    if (!condition || !state || !event_us) {
      throw std::runtime_error(
          fmt::format("{}:{}: alert without condition, state or eventTimeUs", source, number));
    }
    double event = 0;
    try {
      event = std::stod(*event_us);
    } catch (const std::exception&) {
      throw std::runtime_error(
          fmt::format("{}:{}: eventTimeUs = {}: not a number", source, number, *event_us));
    }
    const double t = (event - *origin_us) * 1e-6;
    if (std::find(conditions.begin(), conditions.end(), *condition) == conditions.end()) continue;
    if (*state == "ALERT_STATE_CLEARED") {
      const auto it = active_since.find(*condition);
      if (it != active_since.end()) {
        if (it->second <= end_s && t >= from_s) return true;
        active_since.erase(it);
      }
    } else {
      active_since.try_emplace(*condition, t);
    }
  }
  for (const auto& [condition, since] : active_since) {
    if (since <= end_s) return true;  // still active when the record ended
  }
  return false;
}

AlarmEvaluation EvaluateAlarms(const std::filesystem::path& replays,
                               const std::filesystem::path& records, double window_s) {
  const auto reference_path = records / "REFERENCE.csv";
  std::ifstream reference(reference_path);
  if (!reference) {
    throw std::runtime_error(fmt::format("cannot read {}", reference_path.string()));
  }
  AlarmEvaluation ev;
  std::string line;
  int number = 0;
  while (std::getline(reference, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("record,", 0) == 0) continue;
    std::stringstream fields(line);
    AlarmRecordResult r;
    std::string truth;
    if (!std::getline(fields, r.record, ',') || !std::getline(fields, r.alarm, ',') ||
        !std::getline(fields, truth) || (truth != "0" && truth != "1")) {
      throw std::runtime_error(fmt::format("{}:{}: expected record,alarm,0|1, got '{}'",
                                           reference_path.string(), number, line));
    }
    r.truth = truth == "1";
    const auto header = io::ReadWfdbHeader(records / r.record);
    const double end_s = static_cast<double>(header.num_samples) / header.sampling_frequency;
    const auto replay_path = replays / (r.record + ".jsonl");
    std::ifstream replay(replay_path);
    if (!replay) throw std::runtime_error(fmt::format("cannot read {}", replay_path.string()));
    r.alarmed = AlarmActiveAtEnd(replay, replay_path.string(), r.alarm, end_s, window_s);
    ev.records.push_back(std::move(r));
  }
  if (ev.records.empty()) {
    throw std::runtime_error(fmt::format("{}: no records", reference_path.string()));
  }
  return ev;
}

void PrintAlarmEvaluation(const AlarmEvaluation& ev, std::ostream& out) {
  out << "Bedside alarms (PhysioNet/CinC 2015 rules: alert active in the record's last 16 s)\n";
  out << fmt::format("{:<24} {:>4} {:>4} {:>4} {:>4} {:>7} {:>7} {:>7}\n", "alarm", "TP", "FP",
                     "FN", "TN", "TPR %", "TNR %", "score");
  for (const auto& [alarm, c] : ev.ByType()) {
    out << fmt::format("{:<24} {:>4} {:>4} {:>4} {:>4} {:>7} {:>7} {:>7}\n", alarm, c.tp, c.fp,
                       c.fn, c.tn, Cell(c.tpr()), Cell(c.tnr()), Cell(c.score()));
  }
  std::string missed, false_alarms;
  for (const auto& r : ev.records) {
    if (r.truth && !r.alarmed) missed += " " + r.record;
    if (!r.truth && r.alarmed) false_alarms += " " + r.record;
  }
  out << "missed (FN):" << (missed.empty() ? " none" : missed) << "\n";
  out << "false (FP):" << (false_alarms.empty() ? " none" : false_alarms) << "\n";
}

std::string AlarmEvaluationJson(const AlarmEvaluation& ev) {
  std::string types;
  for (const auto& [alarm, c] : ev.ByType()) {
    types += fmt::format(
        "{}{}:{{\"tp\":{},\"fp\":{},\"fn\":{},\"tn\":{},\"tpr\":{},\"tnr\":{},\"score\":{}}}",
        types.empty() ? "" : ",", JsonQuote(alarm), c.tp, c.fp, c.fn, c.tn, JsonNumber(c.tpr()),
        JsonNumber(c.tnr()), JsonNumber(c.score()));
  }
  std::string records;
  for (const auto& r : ev.records) {
    records += fmt::format("{}{{\"record\":{},\"alarm\":{},\"true\":{},\"alarmed\":{}}}",
                           records.empty() ? "" : ",", JsonQuote(r.record), JsonQuote(r.alarm),
                           r.truth, r.alarmed);
  }
  return fmt::format("{{\"types\":{{{}}},\"records\":[{}]}}", types, records);
}

}  // namespace vigil::eval
