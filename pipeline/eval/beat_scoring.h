// Beat-by-beat scoring of QRS detections and beat labels against reference annotations, the
// way ANSI/AAMI EC57 specifies and WFDB `bxb` implements it:
//   - a test beat matches a reference beat when they are within `match_window_s` (150 ms);
//     pairs are formed closest first, each beat used at most once;
//   - reference and test beats inside ventricular flutter/fibrillation episodes (the `[` and
//     `]` annotations) are not scored (EC57 excludes VF from beat statistics);
//   - beats before `start_s` (the learning period, 5 min by EC57) are not scored;
//   - QRS: Se = TP / (TP + FN), +P = TP / (TP + FP);
//   - ventricular ectopic beats (EC57 "VEB", reference classes V and E): Se = Vv / ref V,
//     +P = Vv / test V, where test V beats matched to reference F or Q beats are not counted
//     against +P (EC57 does not penalise V on fusion or unclassifiable beats).
// Pure functions; thread-safe. Episode scoring (AF, VF) is a separate file beside this one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "operators/io/wfdb_annotation.h"

namespace vigil::eval {

struct TestBeat {
  int64_t sample = 0;  // at the reference record's sampling rate
  char label = 'N';    // AAMI class letter: N, S, V, F, Q
};

struct BeatCounts {
  int64_t tp = 0, fn = 0, fp = 0;        // QRS detection
  int64_t v_tp = 0, v_fn = 0, v_fp = 0;  // ventricular beats (V vs non-V)
  int64_t ref_beats = 0;

  BeatCounts& operator+=(const BeatCounts& o);
  // Percentages; NaN when the denominator is 0.
  double Se() const;
  double PPlus() const;
  double VSe() const;
  double VPPlus() const;
};

struct BeatScoringOptions {
  double match_window_s = 0.15;
  double start_s = 0;  // 300 for the EC57 "without the first 5 minutes" figures
};

// `reference` as read by io::ReadWfdbAnnotations; `test` in any order.
BeatCounts ScoreBeats(const std::vector<io::WfdbAnnotation>& reference, std::vector<TestBeat> test,
                      double sample_rate_hz, const BeatScoringOptions& options = {});

// MIT-BIH records with paced beats, left out of gross totals (EC57 / AAMI practice).
bool IsPacedRecord(const std::string& record_name);

}  // namespace vigil::eval
