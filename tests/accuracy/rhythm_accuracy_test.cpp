// Accuracy of the rhythm stage on the reference recordings (../shared/data, README there):
//   - AF episodes on MIT-BIH 201 and 203: duration Se and +P >= 90 %;
//   - VF/VFL on the vfdb records: episode Se >= 90 %, median onset delay <= 10 s;
//   - no asystole anywhere in mitdb.
// Until the QRS detector is merged, beats come from the reference `.atr` annotations (label and
// time; RR and heart rate derived here) and the waveform from the record's first signal, fed in
// 1 s chunks as the service would. Every record's numbers are printed.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "operators/ecg/rhythm_analyzer.h"
#include "operators/io/wfdb_annotation.h"
#include "operators/io/wfdb_record.h"
#include "pipeline/eval/episode_score.h"
#include "support/test_support.h"

namespace {

using vigil::eval::EpisodeSpan;
using vigil::testing::SharedData;
namespace ops = vigil::ops;

const std::vector<std::string> kMitdb = {"101", "102", "104", "106", "107", "108", "109", "112",
                                         "114", "115", "116", "118", "119", "122", "124", "201",
                                         "203", "205", "207", "208", "209", "215", "217", "220",
                                         "223", "230"};
const std::vector<std::string> kVfdb = {"418", "420", "422", "424", "426", "428",
                                        "430", "605", "609", "611", "614"};

struct RecordRun {
  std::vector<EpisodeSpan> detected;
  std::vector<EpisodeSpan> reference;
  double duration_s = 0;
};

// Reference beats of a record: AAMI label, time from the record start, RR to the previous beat.
std::vector<ops::Beat> ReferenceBeats(const std::vector<vigil::io::WfdbAnnotation>& anns,
                                      double fs) {
  std::vector<ops::Beat> beats;
  for (const auto& a : anns) {
    if (!a.IsBeat()) continue;
    ops::Beat b;
    b.sample = a.sample;
    b.time_us = ops::SampleTime(0, fs, a.sample);
    const char c = a.AamiClass();
    b.label = c == 'V' ? ops::BeatClass::kVentricular
              : c == 'S' ? ops::BeatClass::kSupraventricular
              : c == 'F' ? ops::BeatClass::kFusion
              : c == 'Q' ? ops::BeatClass::kUnclassifiable : ops::BeatClass::kNormal;
    if (!beats.empty()) b.rr_s = static_cast<float>(ops::ToSeconds(b.time_us - beats.back().time_us));
    beats.push_back(b);
  }
  return beats;
}

RecordRun RunRecord(const std::filesystem::path& record, bool with_reference_beats) {
  const auto rec = vigil::io::ReadWfdbRecord(record);
  const auto anns = vigil::io::ReadWfdbAnnotations(record);
  const double fs = rec.header.sampling_frequency;
  const auto signal = rec.PhysicalSignal(0);
  std::vector<ops::Beat> beats;
  if (with_reference_beats) beats = ReferenceBeats(anns, fs);

  const auto analyzer = vigil::ecg::RhythmAnalyzer::Make({});
  auto state = analyzer.MakeState();
  ops::Events events;
  const auto chunk = static_cast<size_t>(fs);
  size_t next_beat = 0;
  for (size_t i = 0; i < signal.size(); i += chunk) {
    const size_t n = std::min(chunk, signal.size() - i);
    const ops::Chunk c{ops::SampleTime(0, fs, static_cast<int64_t>(i)), fs,
                       std::span<const float>(signal).subspan(i, n)};
    const size_t first = next_beat;
    while (next_beat < beats.size() && beats[next_beat].time_us < c.end_us()) ++next_beat;
    analyzer.Process(*state, c, std::span(beats).subspan(first, next_beat - first), c.end_us(),
                     events);
  }
  analyzer.Finish(*state, events);

  RecordRun run;
  run.duration_s = static_cast<double>(signal.size()) / fs;
  for (const auto& e : events) {
    const auto* ep = std::get_if<ops::Episode>(&e);
    if (!ep || ep->phase != ops::Episode::Phase::kClosed) continue;
    run.detected.push_back({std::string(ops::EpisodeName(ep->kind)), ops::ToSeconds(ep->start_us),
                            ops::ToSeconds(ep->end_us)});
  }
  run.reference = vigil::eval::ReferenceEpisodes(
      vigil::io::RhythmIntervals(anns, static_cast<int64_t>(signal.size())), fs);
  return run;
}

TEST(RhythmAccuracy, AtrialFibrillationOnMitdb201And203) {
  std::vector<vigil::eval::RecordEpisodeScore> rows;
  for (const std::string r : {"201", "203"}) {
    const auto run = RunRecord(SharedData("mitdb/" + r + ".hea").replace_extension(), true);
    rows.push_back({std::string(r), vigil::eval::ScoreEpisodes(run.reference, run.detected, {"AFIB"})});
  }
  std::cout << vigil::eval::EpisodeTable("AF episodes, MIT-BIH (reference beats)", rows)
            << vigil::eval::EpisodeJson(rows) << "\n";
  for (const auto& row : rows) {
    EXPECT_GE(row.score.DurationSensitivity(), 0.90) << row.record;
    EXPECT_GE(row.score.DurationPositivePredictivity(), 0.90) << row.record;
  }
}

TEST(RhythmAccuracy, MitdbAlarmsAndNoAsystole) {
  std::vector<vigil::eval::RecordEpisodeScore> af_rows, vt_rows;
  std::map<std::string, int> counts;
  int asystole = 0;
  for (const auto& r : kMitdb) {
    const auto run = RunRecord(SharedData("mitdb/" + r + ".hea").replace_extension(), true);
    af_rows.push_back({std::string(r), vigil::eval::ScoreEpisodes(run.reference, run.detected, {"AFIB"})});
    vt_rows.push_back({std::string(r), vigil::eval::ScoreEpisodes(run.reference, run.detected, {"VT"})});
    std::map<std::string, int> mine;
    for (const auto& e : run.detected) {
      ++counts[e.rhythm];
      ++mine[e.rhythm];
      asystole += e.rhythm == "ASYS";
    }
    std::string line = r + ":";
    for (const auto& [k, v] : mine) line += fmt::format(" {}={}", k, v);
    std::cout << line << "\n";
  }
  std::cout << vigil::eval::EpisodeTable("AF episodes, mitdb (reference beats)", af_rows)
            << vigil::eval::EpisodeTable("VT episodes, mitdb (reference beats)", vt_rows);
  std::string total = "episodes over mitdb:";
  for (const auto& [k, v] : counts) total += fmt::format(" {}={}", k, v);
  std::cout << total << "\n";
  EXPECT_EQ(asystole, 0);
}

TEST(RhythmAccuracy, VentricularFibrillationOnVfdb) {
  std::vector<vigil::eval::RecordEpisodeScore> rows;
  for (const auto& r : kVfdb) {
    const auto run = RunRecord(SharedData("vfdb/" + r + ".hea").replace_extension(), false);
    rows.push_back({std::string(r), vigil::eval::ScoreEpisodes(run.reference, run.detected, {"VF", "VFL"})});
  }
  std::cout << vigil::eval::EpisodeTable("VF/VFL episodes, vfdb (waveform only)", rows)
            << vigil::eval::EpisodeJson(rows) << "\n";
  vigil::eval::EpisodeScore total;
  for (const auto& row : rows) total += row.score;
  EXPECT_GE(total.EpisodeSensitivity(), 0.90);
  EXPECT_LE(total.MedianOnsetDelay(), 10.0);
}

}  // namespace
