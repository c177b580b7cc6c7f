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

// False ventricular alarms on a record with a WFDB `.atr` (issue 15's measure): detected VT,
// VF and VFL episodes that overlap no reference VT, VF, VFL, IVR or asystole interval and no
// reference run of 3 or more ventricular beats, each widened by 2 s.
struct FalseVentricular {
  std::string record;
  int detected = 0;  // VT + VF + VFL episodes
  int false_alarms = 0;
  double hours = 0;
};

struct EpisodeEvaluation {
  std::vector<FalseVentricular> false_ventricular;
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
