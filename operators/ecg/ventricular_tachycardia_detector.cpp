#include "operators/ecg/ventricular_tachycardia_detector.h"

#include <cmath>

#include "operators/core/options.h"
#include "operators/ecg/episode_tracker.h"

namespace vigil::ecg {

VentricularTachycardiaDetector VentricularTachycardiaDetector::Make(
    const VentricularTachycardiaOptions& o) {
  ops::RequireRange("vt_min_beats", o.min_beats, 3, 50);
  ops::Require(o.min_beats == std::floor(o.min_beats), "vt_min_beats", o.min_beats,
               "must be a whole number");
  ops::RequireRange("vt_min_rate_bpm", o.min_rate_bpm, 40, 300);
  return VentricularTachycardiaDetector(o);
}

ops::Explanation VentricularTachycardiaDetector::Explain(const State& s) const {
  ops::Explanation why;
  why.algorithm = "ecg.vt.run";
  why.version = "1.0.0";
  const double rate = s.run_beats > 1 && s.run_rr_sum_s > 0
                          ? 60.0 * (s.run_beats - 1) / s.run_rr_sum_s : 0;
  why.measures = {{"ventricular_beats", static_cast<double>(s.run_beats), "beats"},
                  {"rate", rate, "bpm"}};
  why.limits = {{"vt_min_beats", static_cast<double>(options_.min_beats), "beats", ">="},
                {"vt_min_rate", options_.min_rate_bpm, "bpm", ">="}};
  why.rule = ">= 5 consecutive ventricular beats at >= 100 bpm";
  return why;
}

void VentricularTachycardiaDetector::Stop(State& s, ops::Events& out) const {
  if (s.open) {
    out.push_back(MakeEpisode(ops::EpisodeKind::kVentricularTachycardia,
                              ops::Episode::Phase::kClosed, s.run_start_us, s.last_v_us,
                              Explain(s)));
  }
  s.open = false;
  s.run_beats = 0;
  s.run_rr_sum_s = 0;
}

void VentricularTachycardiaDetector::OnBeat(State& s, const ops::Beat& beat, bool usable,
                                            ops::Events& out) const {
  if (!usable || beat.label != ops::BeatClass::kVentricular) {
    Stop(s, out);
    return;
  }
  if (s.run_beats == 0) {
    s.run_start_us = beat.time_us;
  } else {
    s.run_rr_sum_s += beat.rr_s;
  }
  ++s.run_beats;
  s.last_v_us = beat.time_us;
  if (!s.open && s.run_beats >= options_.min_beats &&
      60.0 * (s.run_beats - 1) >= options_.min_rate_bpm * s.run_rr_sum_s) {
    s.open = true;
    out.push_back(MakeEpisode(ops::EpisodeKind::kVentricularTachycardia,
                              ops::Episode::Phase::kOpened, s.run_start_us, 0, Explain(s)));
  }
}

void VentricularTachycardiaDetector::State::Save(ops::SnapshotWriter& w) const {
  w.Put<int32_t>(run_beats);
  w.Put<double>(run_rr_sum_s);
  w.Put<int64_t>(run_start_us);
  w.Put<int64_t>(last_v_us);
  w.Put<uint8_t>(open);
}

void VentricularTachycardiaDetector::State::Load(ops::SnapshotReader& r) {
  run_beats = r.Get<int32_t>();
  run_rr_sum_s = r.Get<double>();
  run_start_us = r.Get<int64_t>();
  last_v_us = r.Get<int64_t>();
  open = r.Get<uint8_t>() != 0;
}

}  // namespace vigil::ecg
