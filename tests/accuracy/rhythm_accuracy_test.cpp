// The rhythm stage alone on MIT-BIH 201 and 203 with the reference beats (`.atr` labels and
// times; RR derived here) and the record's first signal in 1 s chunks: separates what the AF
// detector does from what the QRS detector and classifier feed it. The end-to-end floors are in
// rhythm_replay_accuracy_test.cpp (vigil replay -> vigil eval).
#include <fmt/format.h>
#include <gtest/gtest.h>

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

const std::vector<std::string> kMitdb = {
    "101", "102", "104", "106", "107", "108", "109", "112", "114", "115", "116", "118", "119",
    "122", "124", "201", "203", "205", "207", "208", "209", "215", "217", "220", "223", "230"};
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
    b.label = c == 'V'   ? ops::BeatClass::kVentricular
              : c == 'S' ? ops::BeatClass::kSupraventricular
              : c == 'F' ? ops::BeatClass::kFusion
              : c == 'Q' ? ops::BeatClass::kUnclassifiable
                         : ops::BeatClass::kNormal;
    if (!beats.empty())
      b.rr_s = static_cast<float>(ops::ToSeconds(b.time_us - beats.back().time_us));
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
  return vigil::ecg::RhythmOptionsFrom(parameters);
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
  if (std::filesystem::exists(record.string() + ".atr"))
    anns = vigil::io::ReadWfdbAnnotations(record);
  std::vector<ops::Beat> reference;
  std::vector<vigil::ecg::AtrialSegment> atrial;  // PR-interval segments at the reference beats
  if (source == Beats::kReference) {
    reference = ReferenceBeats(anns, fs);
    // Cut from the raw signal (the monitor cuts them from its conditioned signal; the P-wave
    // coherence differentiates them, which removes the baseline either way).
    for (const auto& b : reference) {
      atrial.push_back(vigil::ecg::ExtractAtrialSegment(
          [&signal](int64_t k) {
            return k >= 0 && k < static_cast<int64_t>(signal.size())
                       ? signal[static_cast<size_t>(k)]
                       : 0.0f;
          },
          b.sample, fs));
    }
  }
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
                       c.end_us(), events, std::span(atrial).subspan(first, next_beat - first));
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
    const auto run =
        RunRecord(SharedData("mitdb/" + r + ".hea").replace_extension(), Beats::kReference);
    rows.push_back({std::string(r), vigil::eval::ScoreAfEpisodes(run.reference, run.detected)});
  }
  std::cout << vigil::eval::EpisodeTable("AF episodes, MIT-BIH (reference beats)", rows)
            << vigil::eval::EpisodeJson(rows) << "\n";
  // Issue 3's target is >= 0.90 for both (asserted on the real detector's beats in
  // rhythm_replay_accuracy_test); with reference beats this test isolates the AF stage and
  // holds today's level (2026-11-23, with P-wave segments, the P-wave bound on onsets, the 30-s
  // close hold, reference flutter excluded from +P as EC57 does: 201: 0.990 / 0.753, 203: 0.927
  // / 0.982) less ~3 points as a regression floor. The hold joins two of 201's episodes across
  // a stretch the reference calls sinus (+P 0.805 without it); on the detector's own beats
  // (rhythm_replay_accuracy_test) 201's +P rose with it, 0.914 -> 0.915.
  const std::map<std::string, std::pair<double, double>> floors = {{"201", {0.95, 0.72}},
                                                                   {"203", {0.89, 0.95}}};
  for (const auto& row : rows) {
    EXPECT_GE(row.score.DurationSensitivity(), floors.at(row.record).first) << row.record;
    EXPECT_GE(row.score.DurationPositivePredictivity(), floors.at(row.record).second) << row.record;
  }
}

}  // namespace
