// `vigil eval --alarms`: scores replays of PhysioNet/CinC Challenge 2015 records ("Reducing
// false arrhythmia alarms in the ICU"; Clifford et al., Physiol Meas 37(8):E5-E23, 2016)
// against the experts' verdicts in the records' REFERENCE.csv (`record,alarm,true`).
//
// Each record ends when the bedside monitor sounded an alarm of one type. Vigil, acting as the
// monitor, "alarms" on the record when an alert of that type's conditions is active (RAISED and
// not yet CLEARED, latching included) at any moment of the record's last `window_s` (16 s):
//   Asystole                -> ASYSTOLE
//   Bradycardia             -> BRADYCARDIA or EXTREME_BRADYCARDIA
//   Tachycardia             -> TACHYCARDIA or EXTREME_TACHYCARDIA
//   Ventricular_Tachycardia -> VENTRICULAR_TACHYCARDIA
//   Ventricular_Flutter_Fib -> VENTRICULAR_FIBRILLATION
// Verdicts count as TP / FP / FN / TN; the challenge score is
// (TP + TN) / (TP + TN + FP + 5 FN), in percent.
//
// Input: <replays>/<record>.jsonl, the output of `vigil replay <record>` (its first line gives
// the time origin its alerts' device times are placed in), and the records' folder
// (REFERENCE.csv and the headers, for each record's length). Throws std::runtime_error naming the
// file that is missing or malformed.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace vigil::eval {

struct AlarmRecordResult {
  std::string record;
  std::string alarm;     // the monitor's alarm type, as REFERENCE.csv names it
  bool truth = false;    // the experts' verdict
  bool alarmed = false;  // Vigil had a matching alert active in the last window
};

struct AlarmCounts {
  int tp = 0, fp = 0, fn = 0, tn = 0;
  double tpr() const;    // percent; NaN without true alarms
  double tnr() const;    // percent; NaN without false alarms
  double score() const;  // the challenge score, percent
};

struct AlarmEvaluation {
  std::vector<AlarmRecordResult> records;
  // Tallies per alarm type, in REFERENCE.csv's names, plus "all".
  std::vector<std::pair<std::string, AlarmCounts>> ByType() const;
};

// The alarm lines of one replay: whether an alert of `alarm`'s conditions was active in
// [end_s - window_s, end_s]. Throws std::invalid_argument for an unknown alarm type.
bool AlarmActiveAtEnd(std::istream& replay, const std::string& source, const std::string& alarm,
                      double end_s, double window_s);

AlarmEvaluation EvaluateAlarms(const std::filesystem::path& replays,
                               const std::filesystem::path& records, double window_s = 16);

// A table per alarm type (TP FP FN TN, TPR, TNR, score) and the records in error.
void PrintAlarmEvaluation(const AlarmEvaluation& evaluation, std::ostream& out);
std::string AlarmEvaluationJson(const AlarmEvaluation& evaluation);

}  // namespace vigil::eval
