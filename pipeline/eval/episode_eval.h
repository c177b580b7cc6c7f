// `vigil eval --episodes`: scores the episode lines of replay outputs (one <record>.jsonl per
// record) against the reference rhythm annotations, per record and in total:
//   - records with a WFDB `.atr`: AF (AFIB), VF (VF + VFL) and VT episode Se/+P, duration Se/+P
//     and onset delay (episode_score.h), plus the count of every detected episode kind (false
//     alarms on records without that rhythm). VT is scored like VF: a reference "(VT" interval
//     of any length (MIT-BIH marks runs from 3 beats, the alarm rule here needs 5), so VT Se
//     counts the short runs no alarm is meant for;
//   - with `cinc_reference` (CinC 2017 REFERENCE.csv): AF versus rest per record (AF when
//     detected AF covers at least half of the record), Se, Sp, +P, F1 and confusion counts.
// Throws std::runtime_error naming the file on unreadable input.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "pipeline/eval/episode_score.h"

namespace vigil::eval {

struct EpisodeEvaluation {
  std::vector<RecordEpisodeScore> af;
  std::vector<RecordEpisodeScore> vf;
  std::vector<RecordEpisodeScore> vt;
  std::vector<CincRecordResult> cinc;
  // Detected episodes per rhythm, per record ("" = all records).
  std::map<std::string, std::map<std::string, int>> counts;
};

// Every <replays>/<name>.jsonl against <records>/<name>. With `cinc_reference`, records are
// scored as CinC 2017 records (label from the CSV; no `.atr` needed).
EpisodeEvaluation EvaluateEpisodes(const std::filesystem::path& replays,
                                   const std::filesystem::path& records,
                                   const std::filesystem::path& cinc_reference = {});

// Tables (human) and one JSON object with every number.
void PrintEpisodeEvaluation(const EpisodeEvaluation& evaluation, std::ostream& out);
std::string EpisodeEvaluationJson(const EpisodeEvaluation& evaluation);

}  // namespace vigil::eval
