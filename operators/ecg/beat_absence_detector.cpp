#include "operators/ecg/beat_absence_detector.h"

#include <fmt/format.h>

#include <algorithm>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/ecg/episode_tracker.h"

namespace vigil::ecg {

const ops::ParameterTable<BeatAbsenceOptions>& BeatAbsenceParameters() {
  using O = BeatAbsenceOptions;
  static const ops::ParameterTable<O> table = {
      {"pause_s", &O::pause_s, 1, 30, "s", "no QRS for longer than this is a PAUSE"},
      {"asystole_s", &O::asystole_s, 2, 10, "s",
       "no QRS for this long is ASYSTOLE (IEC 60601-2-27: alarm within 10 s)"},
      {"asystole_activity_ratio", &O::activity_ratio, 0.05, 1, "fraction",
       "slopes above this share of the recent QRS slope are missed QRS complexes, not asystole"},
      {"asystole_activity_slope_mv_s", &O::activity_slope_mv_s, 0.1, 100, "mV/s",
       "... or above this slope"},
      {"asystole_activity_p2p_mv", &O::activity_p2p_mv, 0.05, 10, "mV",
       "band-passed peak-to-peak at which a stretch is not the silence of asystole"},
      {"asystole_baseline_shift_mv", &O::baseline_shift_mv, 0.05, 10, "mV",
       "baseline movement within a block at which it is not asystole (settling amplifier)"},
  };
  return table;
}

BeatAbsenceDetector BeatAbsenceDetector::Make(const BeatAbsenceOptions& o) {
  BeatAbsenceParameters().Check(kEcgOperatorName, o);
  return BeatAbsenceDetector(o);
}

ops::Explanation BeatAbsenceDetector::Explain(bool asystole, double seconds) const {
  ops::Explanation why;
  why.algorithm = "ecg.beat_absence";
  why.version = "1.0.0";
  why.measures = {{"time_without_qrs", seconds, "s"}};
  if (asystole) {
    why.limits = {{"asystole", options_.asystole_s, "s", ">="}};
    why.rule = fmt::format("no QRS for {:g} s while the signal is present and usable",
                           options_.asystole_s);
  } else {
    why.limits = {{"pause", options_.pause_s, "s", ">"}};
    why.rule = fmt::format(
        "RR > {0:g} s (no QRS for more than {0:g} s) while the signal is present and usable",
        options_.pause_s);
  }
  return why;
}

void BeatAbsenceDetector::Start(State& s, ops::TimeUs t) const {
  s.reference_us = std::max(s.reference_us, t);
}

void BeatAbsenceDetector::Stop(State& s, ops::TimeUs end_us, ops::Events& out) const {
  const double seconds = ops::ToSeconds(end_us - s.open_start_us);
  if (s.pause_open) {
    out.push_back(MakeEpisode(ops::EpisodeKind::kPause, ops::Episode::Phase::kClosed,
                              s.open_start_us, end_us, Explain(false, seconds)));
  }
  if (s.asystole_open) {
    out.push_back(MakeEpisode(ops::EpisodeKind::kAsystole, ops::Episode::Phase::kClosed,
                              s.open_start_us, end_us, Explain(true, seconds)));
  }
  s.pause_open = s.asystole_open = false;
}

void BeatAbsenceDetector::OnBeat(State& s, ops::TimeUs t, ops::Events& out) const {
  Stop(s, t, out);
  s.last_beat_us = t;
  s.reference_us = std::max(s.reference_us, t);
}

void BeatAbsenceDetector::OnUnusable(State& s, ops::TimeUs from_us, ops::TimeUs until_us,
                                     ops::Events& out) const {
  if (s.pause_open || s.asystole_open) Stop(s, std::max(from_us, s.open_start_us), out);
  s.reference_us = std::max(s.reference_us, until_us);
}

void BeatAbsenceDetector::AdvanceTo(State& s, ops::TimeUs now_us, ops::Events& out) const {
  if (s.reference_us < 0) return;
  const auto silent = now_us - s.reference_us;
  if (!s.pause_open && silent > ops::FromSeconds(options_.pause_s)) {
    s.pause_open = true;
    s.open_start_us = s.reference_us;
    out.push_back(MakeEpisode(ops::EpisodeKind::kPause, ops::Episode::Phase::kOpened,
                              s.open_start_us, 0, Explain(false, ops::ToSeconds(silent))));
  }
  if (!s.asystole_open && silent >= ops::FromSeconds(options_.asystole_s)) {
    s.asystole_open = true;
    s.open_start_us = s.reference_us;
    out.push_back(MakeEpisode(ops::EpisodeKind::kAsystole, ops::Episode::Phase::kOpened,
                              s.open_start_us, 0, Explain(true, ops::ToSeconds(silent))));
  }
}

void BeatAbsenceDetector::State::Save(ops::SnapshotWriter& w) const {
  w.Put<int64_t>(reference_us);
  w.Put<int64_t>(last_beat_us);
  w.Put<uint8_t>(pause_open);
  w.Put<uint8_t>(asystole_open);
  w.Put<int64_t>(open_start_us);
}

void BeatAbsenceDetector::State::Load(ops::SnapshotReader& r) {
  reference_us = r.Get<int64_t>();
  last_beat_us = r.Get<int64_t>();
  pause_open = r.Get<uint8_t>() != 0;
  asystole_open = r.Get<uint8_t>() != 0;
  open_start_us = r.Get<int64_t>();
}

}  // namespace vigil::ecg
