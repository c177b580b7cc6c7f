// `vigil eval`: scores a replay's output (JSON Lines, as written by `vigil replay`) against a
// reference WFDB record's annotations. No Kafka involved.
//
// Today it scores beats (beat_scoring.h); each kind of scoring is one member of
// RecordEvaluation / EvaluationReport plus one block in the table and JSON writers, so episode
// scoring (AF, VF, CinC) is added beside `beats` without changing what exists.
//
// Replay lines used: {"type":"beat","t":<seconds from record start>,"label":"N"|"S"|"V"|"F"|"Q"}
// (the "sample" field is ignored: `t` is the contract and also holds across gaps); lines of
// other types are ignored. Errors: functions throw std::runtime_error (io::WfdbError,
// JsonError) naming the file and line.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "pipeline/eval/beat_scoring.h"

namespace vigil::eval {

// Beats of a replay output file (type "beat").
std::vector<TestBeat> ReadReplayBeats(const std::filesystem::path& replay_jsonl,
                                      double sample_rate_hz);

struct BeatEvaluation {
  BeatCounts all;          // whole record
  BeatCounts after_5_min;  // EC57: without the first 5 minutes (learning period)
};

struct RecordEvaluation {
  std::string record;  // e.g. "100"
  bool paced = false;  // left out of gross totals
  BeatEvaluation beats;
};

struct EvaluationReport {
  std::vector<RecordEvaluation> records;
  BeatEvaluation gross_beats;  // sum over non-paced records
};

// `record` is the reference path without extension (e.g. ../shared/data/mitdb/100).
RecordEvaluation EvaluateRecord(const std::filesystem::path& replay_jsonl,
                                const std::filesystem::path& record,
                                const BeatScoringOptions& options = {});
// Scores already-read test beats (what the accuracy test and the CLI share).
RecordEvaluation EvaluateRecordBeats(const std::string& record_name,
                                     const std::vector<io::WfdbAnnotation>& reference,
                                     const std::vector<TestBeat>& test, double sample_rate_hz,
                                     const BeatScoringOptions& options = {});

// Adds a record and updates the gross totals.
void AddRecord(EvaluationReport& report, RecordEvaluation record);

void PrintReport(const EvaluationReport& report, std::ostream& out);
std::string ReportJson(const EvaluationReport& report);

}  // namespace vigil::eval
