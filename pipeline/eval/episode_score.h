// Episode-level scoring of rhythm detections against reference rhythm annotations, the way
// ANSI/AAMI EC57 and WFDB `epicmp` score AF and VF episodes:
//   - episode sensitivity: reference episodes overlapped by at least one detected episode of the
//     same class, over all reference episodes; episode positive predictivity: detected episodes
//     overlapping at least one reference episode, over all detected episodes;
//   - duration sensitivity: time both call the class, over reference time; duration positive
//     predictivity: the same overlap over detected time;
//   - onset delay: detected start minus reference start, for each detected reference episode
//     (its first overlapping detection; negative when the detection starts early);
//   - exclusions (epicmp's find_exclusions): for AF positive predictivity, reference-marked
//     atrial flutter is cut out of the detected episodes - AF called during flutter is neither
//     a true nor a false positive, and a detection lying wholly inside flutter is not counted.
// And record-level AF-versus-rest for PhysioNet/CinC 2017 (labels N, A, O, ~): a record counts
// as AF when detected AF covers at least half of it.
//
// Inputs are the replay output's episode lines (JSON Lines:
// {"type":"episode","rhythm":"AFIB","start":100.0,"end":160.5}, seconds from record start) and
// io::RhythmInterval from the WFDB reader. Pure functions; errors throw std::runtime_error naming
// the file and line.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "operators/io/wfdb_annotation.h"

namespace vigil::eval {

struct EpisodeSpan {
  std::string rhythm;  // AFIB VT VF VFL ASYS PAUSE BRADY TACHY NOISE ...
  double start_s = 0;
  double end_s = 0;
};

// Episode lines of a replay output; other lines are skipped. An episode reported more than once
// (opened, updated, closed) counts once, with its latest end. Throws std::runtime_error on a
// malformed episode line (naming `source` and the line number).
std::vector<EpisodeSpan> ParseEpisodeLines(std::istream& in, const std::string& source);
std::vector<EpisodeSpan> ReadEpisodeFile(const std::filesystem::path& path);

// Reference episodes from rhythm intervals (sample indices) at `sample_rate_hz`; vfdb's "VFIB"
// is reported as "VF".
std::vector<EpisodeSpan> ReferenceEpisodes(const std::vector<io::RhythmInterval>& intervals,
                                           double sample_rate_hz);

struct EpisodeScore {
  int reference_episodes = 0;
  int reference_detected = 0;
  int detected_episodes = 0;
  int detected_true = 0;
  double reference_s = 0;
  double detected_s = 0;
  double overlap_s = 0;
  std::vector<double> onset_delays_s;

  // NaN when the denominator is 0.
  double EpisodeSensitivity() const;
  double EpisodePositivePredictivity() const;
  double DurationSensitivity() const;
  double DurationPositivePredictivity() const;
  double MedianOnsetDelay() const;
  EpisodeScore& operator+=(const EpisodeScore& other);
};

// Scores the detected episodes whose rhythm is in `classes` against the reference episodes whose
// rhythm is in `classes` (e.g. {"VF", "VFL"}: flutter detected as fibrillation still counts).
// Reference intervals of the `excluded` classes are cut out of the detected episodes before the
// positive predictivities (EC57/epicmp: {"AFL"} for AF; see the header comment).
EpisodeScore ScoreEpisodes(const std::vector<EpisodeSpan>& reference,
                           const std::vector<EpisodeSpan>& detected,
                           const std::set<std::string>& classes,
                           const std::set<std::string>& excluded = {});
// AF as EC57 scores it: {"AFIB"}, with reference atrial flutter excluded from +P.
EpisodeScore ScoreAfEpisodes(const std::vector<EpisodeSpan>& reference,
                             const std::vector<EpisodeSpan>& detected);

// Seconds of [0, duration_s) that the episodes of `rhythm` cover (overlaps counted once).
double CoveredSeconds(const std::vector<EpisodeSpan>& episodes, const std::string& rhythm,
                      double duration_s);

struct BinaryScore {
  int tp = 0, fp = 0, fn = 0, tn = 0;
  double Sensitivity() const;
  double Specificity() const;
  double PositivePredictivity() const;
  double F1() const;
};

struct CincRecordResult {
  std::string record;
  char reference = '?';  // N, A, O, ~
  double duration_s = 0;
  double af_fraction = 0;  // detected AF coverage
  bool called_af = false;
  int ventricular_episodes = 0;  // detected VT, VF and VFL episodes (CinC has no such label)
};

// AF versus rest over records (reference 'A' is positive; N, O, ~ negative).
BinaryScore ScoreCinc(const std::vector<CincRecordResult>& records);
// REFERENCE.csv: "record,label" lines (the header line is skipped). Throws on a malformed line.
std::map<std::string, char> ReadCincReference(const std::filesystem::path& csv);

// Human-readable table and JSON of per-record episode scores (plus a total row).
struct RecordEpisodeScore {
  std::string record;
  EpisodeScore score;
};
std::string EpisodeTable(const std::string& title, const std::vector<RecordEpisodeScore>& rows);
std::string EpisodeJson(const std::vector<RecordEpisodeScore>& rows);
std::string CincTable(const std::vector<CincRecordResult>& records);
std::string CincJson(const std::vector<CincRecordResult>& records);

}  // namespace vigil::eval
