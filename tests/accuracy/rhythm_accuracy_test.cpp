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
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "operators/ecg/qrs_detector.h"
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

enum class Beats { kReference, kDetector };

// The rhythm parameters of the run: defaults, or "key=value,..." from VIGIL_RHYTHM_PARAMETERS
// (for development sweeps; the floors below are asserted on whatever is set).
vigil::ecg::RhythmOptions Options() {
  ops::Parameters parameters;
  if (const char* env = std::getenv("VIGIL_RHYTHM_PARAMETERS")) {
    std::string text = env;
    size_t pos = 0;
    while (pos < text.size()) {
      const auto comma = std::min(text.find(',', pos), text.size());
      const auto item = text.substr(pos, comma - pos);
      const auto eq = item.find('=');
      if (eq != std::string::npos) parameters[item.substr(0, eq)] = std::stod(item.substr(eq + 1));
      pos = comma + 1;
    }
  }
  ops::ParameterReader reader("ecg.arrhythmia", parameters);
  auto options = vigil::ecg::RhythmOptionsFrom(reader);
  reader.CheckAllUsed();
  return options;
}

// Beats from ecg-qrs's streaming QRS detector (no classifier yet: every beat is N).
class DetectorBeats {
 public:
  explicit DetectorBeats(double fs) : fs_(fs), detector_(Options(fs)) {}
  // Beats decided while consuming `chunk`; `final_until_us` is how far no earlier beat can still
  // come (the detector's search-back may report a beat up to 1.5 mean RR after the previous).
  std::vector<ops::Beat> Process(const ops::Chunk& chunk, ops::TimeUs& final_until_us) {
    std::vector<vigil::ecg::QrsDetection> found;
    detector_.Process(chunk.values, found);
    std::vector<ops::Beat> beats;
    for (const auto& d : found) {
      ops::Beat b;
      b.sample = d.sample;
      b.time_us = ops::SampleTime(0, fs_, d.sample);
      if (last_us_ >= 0) {
        b.rr_s = static_cast<float>(ops::ToSeconds(b.time_us - last_us_));
        mean_rr_s_ += 0.125 * (b.rr_s - mean_rr_s_);
      }
      last_us_ = b.time_us;
      beats.push_back(b);
    }
    const double lag_s = std::clamp(1.5 * mean_rr_s_ + 0.1, 0.5, 3.0);
    final_until_us = chunk.end_us() - ops::FromSeconds(lag_s);
    return beats;
  }

 private:
  static vigil::ecg::QrsOptions Options(double fs) {
    vigil::ecg::QrsOptions o;
    o.sample_rate_hz = fs;
    return o;
  }
  double fs_;
  vigil::ecg::QrsDetector detector_;
  ops::TimeUs last_us_ = -1;
  double mean_rr_s_ = 0.8;
};

RecordRun RunRecord(const std::filesystem::path& record, Beats source,
                    const vigil::ecg::RhythmOptions& options = Options()) {
  const auto rec = vigil::io::ReadWfdbRecord(record);
  const double fs = rec.header.sampling_frequency;
  const auto signal = rec.PhysicalSignal(0);
  std::vector<vigil::io::WfdbAnnotation> anns;
  if (std::filesystem::exists(record.string() + ".atr")) anns = vigil::io::ReadWfdbAnnotations(record);
  std::vector<ops::Beat> reference;
  if (source == Beats::kReference) reference = ReferenceBeats(anns, fs);
  DetectorBeats detector(fs);

  const auto analyzer = vigil::ecg::RhythmAnalyzer::Make(options);
  auto state = analyzer.MakeState();
  ops::Events events;
  const auto chunk = static_cast<size_t>(fs);
  size_t next_beat = 0;
  for (size_t i = 0; i < signal.size(); i += chunk) {
    const size_t n = std::min(chunk, signal.size() - i);
    const ops::Chunk c{ops::SampleTime(0, fs, static_cast<int64_t>(i)), fs,
                       std::span<const float>(signal).subspan(i, n)};
    if (source == Beats::kReference) {
      const size_t first = next_beat;
      while (next_beat < reference.size() && reference[next_beat].time_us < c.end_us()) {
        ++next_beat;
      }
      analyzer.Process(*state, c, std::span(reference).subspan(first, next_beat - first),
                       c.end_us(), events);
    } else {
      ops::TimeUs final_until = 0;
      const auto beats = detector.Process(c, final_until);
      analyzer.Process(*state, c, beats, final_until, events);
    }
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
    const auto run = RunRecord(SharedData("mitdb/" + r + ".hea").replace_extension(), Beats::kReference);
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
    const auto run = RunRecord(SharedData("mitdb/" + r + ".hea").replace_extension(), Beats::kReference);
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
    const auto run = RunRecord(SharedData("vfdb/" + r + ".hea").replace_extension(), Beats::kDetector);
    rows.push_back({std::string(r), vigil::eval::ScoreEpisodes(run.reference, run.detected, {"VF", "VFL"})});
  }
  std::cout << vigil::eval::EpisodeTable("VF/VFL episodes, vfdb (waveform only)", rows)
            << vigil::eval::EpisodeJson(rows) << "\n";
  vigil::eval::EpisodeScore total;
  for (const auto& row : rows) total += row.score;
  EXPECT_GE(total.EpisodeSensitivity(), 0.90);
  EXPECT_LE(total.MedianOnsetDelay(), 10.0);
}

TEST(RhythmAccuracy, AtrialFibrillationOnCinc2017) {
  const auto reference = vigil::eval::ReadCincReference(SharedData("cinc2017/REFERENCE.csv"));
  ASSERT_EQ(reference.size(), 1500u);
  std::vector<vigil::eval::CincRecordResult> results;
  int asystole = 0;
  std::map<std::string, int> counts;
  for (const auto& [name, label] : reference) {
    const auto run = RunRecord(SharedData("cinc2017/" + name + ".hea").replace_extension(),
                               Beats::kDetector);
    vigil::eval::CincRecordResult r;
    r.record = name;
    r.reference = label;
    r.duration_s = run.duration_s;
    r.af_fraction = vigil::eval::CoveredSeconds(run.detected, "AFIB", run.duration_s) /
                    run.duration_s;
    r.called_af = r.af_fraction >= 0.5;
    results.push_back(r);
    for (const auto& e : run.detected) {
      ++counts[e.rhythm];
      if (e.rhythm == "ASYS") {
        ++asystole;
        std::cout << fmt::format("asystole in {} ({}) {:.1f}-{:.1f} s\n", name, label, e.start_s,
                                 e.end_s);
      }
    }
  }
  std::cout << vigil::eval::CincTable(results);
  std::string total = "episodes over cinc2017:";
  for (const auto& [k, v] : counts) total += fmt::format(" {}={}", k, v);
  std::cout << total << "\n";
  const auto score = vigil::eval::ScoreCinc(results);
  EXPECT_GE(score.F1(), 0.80);
  EXPECT_EQ(asystole, 0);
}

}  // namespace
