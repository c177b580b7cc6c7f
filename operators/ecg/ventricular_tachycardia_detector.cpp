#include "operators/ecg/ventricular_tachycardia_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/ecg/episode_tracker.h"
#include "operators/filters/biquad_cascade.h"
#include "operators/filters/filter_design.h"

namespace vigil::ecg {

namespace {
constexpr double kLowFrequencyHz = 2.0;
constexpr double kSettleS = 1.0;     // the high-pass runs this long before the judged stretch
constexpr double kBeatDelayS = 2.0;  // beats may reach the detector this long after samples
constexpr double kMaxRateHz = 2000;  // snapshot sanity bound (chunks come at 125-1000 Hz)
}  // namespace

double LowFrequencyFraction(std::span<const float> x, size_t from, double sample_rate_hz) {
  constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
  if (from + 2 > x.size() || sample_rate_hz <= 2 * kLowFrequencyHz) return kNan;
  filters::BiquadCascade high_pass(
      filters::ButterworthHighPass(2, kLowFrequencyHz, sample_rate_hz));
  // Filtered from x[0] as the zero level, so that a history shorter than the settling time
  // does not start the filter with a step.
  const double level = x[0];
  double mean = 0;
  for (size_t i = from; i < x.size(); ++i) mean += x[i];
  mean /= static_cast<double>(x.size() - from);
  double total = 0, passed = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double y = high_pass.Step(x[i] - level);
    if (i < from) continue;
    passed += y * y;
    total += (x[i] - mean) * (x[i] - mean);
  }
  if (!(total > 0)) return kNan;
  return std::clamp(1 - passed / total, 0.0, 1.0);
}

const ops::ParameterTable<VentricularTachycardiaOptions>& VtParameters() {
  using O = VentricularTachycardiaOptions;
  static const ops::ParameterTable<O> table = {
      {"vt_min_beats", &O::min_beats, 3, 50, "beats",
       "consecutive ventricular beats of a VT run; at least 4 while the artefact veto is on"},
      {"vt_min_rate_bpm", &O::min_rate_bpm, 40, 300, "bpm", "slowest rate of a VT run"},
      {"vt_artifact_low_frequency_min", &O::artifact_low_frequency_min, 0, 1, "fraction",
       "artefact veto: energy below 2 Hz above this ... (1: veto off)"},
      {"vt_artifact_rr_change_min", &O::artifact_rr_change_min, 0, 10, "fraction",
       "... and a median successive RR change above this share of the mean RR"},
      {"vt_artifact_beats", &O::artifact_beats, 4, 12, "beats",
       "the run's last beats the artefact veto judges"},
      {"vt_max_interruptions", &O::max_interruptions, 0, 3, "beats",
       "beats of another label a run may hold between two ventricular beats"},
  };
  return table;
}

VentricularTachycardiaDetector VentricularTachycardiaDetector::Make(
    const VentricularTachycardiaOptions& o) {
  VtParameters().Check(kEcgOperatorName, o);
  // A run opens at its min_beats-th beat and is not judged again: with fewer than 4 beats the
  // veto could never judge it.
  ops::RequireParameter(o.artifact_low_frequency_min >= 1 || o.min_beats >= 4, kEcgOperatorName,
                        "vt_min_beats", o.min_beats,
                        "must be at least 4 while the artefact veto is on "
                        "(vt_artifact_low_frequency_min < 1)");
  return VentricularTachycardiaDetector(o);
}

ops::Explanation VentricularTachycardiaDetector::Explain(const State& s) const {
  ops::Explanation why;
  why.algorithm = "ecg.vt.run";
  why.version = "1.1.0";
  const double rate =
      s.run_beats > 1 && s.run_rr_sum_s > 0 ? 60.0 * (s.run_beats - 1) / s.run_rr_sum_s : 0;
  why.measures = {{"ventricular_beats", static_cast<double>(s.run_v_beats), "beats"},
                  {"rate", rate, "bpm"}};
  if (!std::isnan(s.low_frequency)) {
    why.measures.push_back({"low_frequency_energy", s.low_frequency, "fraction"});
  }
  if (!std::isnan(s.rr_change)) why.measures.push_back({"rr_change", s.rr_change, "fraction"});
  why.limits = {{"vt_min_beats", static_cast<double>(options_.min_beats), "beats", ">="},
                {"vt_min_rate", options_.min_rate_bpm, "bpm", ">="}};
  // The artefact veto needs both of its conditions: the one the run failed is why it alarms.
  if (!std::isnan(s.low_frequency) && s.low_frequency <= options_.artifact_low_frequency_min) {
    why.limits.push_back(
        {"vt_artifact_low_frequency_min", options_.artifact_low_frequency_min, "fraction", "<="});
  } else if (!std::isnan(s.rr_change) && s.rr_change <= options_.artifact_rr_change_min) {
    why.limits.push_back(
        {"vt_artifact_rr_change_min", options_.artifact_rr_change_min, "fraction", "<="});
  }
  why.rule = fmt::format(">= {} consecutive ventricular beats at >= {:g} bpm, ", options_.min_beats,
                         options_.min_rate_bpm) +
             "unless the run's last beats are slow irregular artefact (energy below 2 Hz above "
             "vt_artifact_low_frequency_min and "
             "median successive RR change above vt_artifact_rr_change_min of the mean RR)";
  return why;
}

double VentricularTachycardiaDetector::HistoryS() const {
  return kSettleS + options_.artifact_beats * 60.0 / options_.min_rate_bpm + kBeatDelayS;
}

void VentricularTachycardiaDetector::OnSamples(State& s, const ops::Chunk& chunk) const {
  if (chunk.values.empty()) return;
  const auto size = static_cast<size_t>(std::ceil(HistoryS() * chunk.sample_rate_hz));
  if (s.sample_rate_hz != chunk.sample_rate_hz || s.history.size() != size) {
    // First samples, a new rate, or a snapshot taken under other options: start again.
    s.sample_rate_hz = chunk.sample_rate_hz;
    s.history.assign(size, 0.0f);
    s.written = 0;
  }
  if (s.written == 0) s.anchor = {};
  s.anchor.OnChunk(static_cast<int64_t>(s.written), chunk.first_sample_us, chunk.sample_rate_hz);
  // Copied as is, in at most two runs per pass over the ring (this runs for every sample of
  // every stream; the rare judgement reads NaN as 0).
  auto values = chunk.values;
  if (values.size() > size) values = values.last(size);
  s.written += chunk.values.size() - values.size();
  while (!values.empty()) {
    const auto pos = static_cast<size_t>(s.written % size);
    const size_t run = std::min(values.size(), size - pos);
    std::copy_n(values.begin(), run, s.history.begin() + static_cast<ptrdiff_t>(pos));
    values = values.subspan(run);
    s.written += run;
  }
}

VentricularTachycardiaDetector::ArtifactMeasures VentricularTachycardiaDetector::Artifact(
    const State& s) const {
  ArtifactMeasures m;
  const size_t n = s.run_times.size();
  if (n < 4) return m;
  // Successive RR changes over the judged beats.
  std::vector<double> rr(n - 1), change(n - 2);
  double mean_rr = 0;
  for (size_t k = 1; k < n; ++k) {
    rr[k - 1] = ops::ToSeconds(s.run_times[k] - s.run_times[k - 1]);
    mean_rr += rr[k - 1];
  }
  mean_rr /= static_cast<double>(n - 1);
  for (size_t k = 1; k < rr.size(); ++k) change[k - 1] = std::fabs(rr[k] - rr[k - 1]);
  if (mean_rr > 0) {
    std::sort(change.begin(), change.end());
    const size_t c = change.size();
    const double median = c % 2 ? change[c / 2] : 0.5 * (change[c / 2 - 1] + change[c / 2]);
    m.rr_change = median / mean_rr;
  }
  // Energy below 2 Hz over (first judged beat, newest beat], the high-pass settled on the
  // kSettleS before, as far as the history holds it.
  if (s.written == 0 || s.sample_rate_hz <= 0 || s.history.empty()) return m;
  const auto index = [&s](ops::TimeUs t) { return s.anchor.IndexOf(t, s.sample_rate_hz); };
  const auto written = static_cast<int64_t>(s.written);
  const auto size = static_cast<int64_t>(s.history.size());
  const int64_t oldest = std::max<int64_t>(0, written - size);
  const int64_t first = index(s.run_times.front()) + 1;
  const int64_t last = std::min(index(s.run_times.back()), written - 1);
  if (first < oldest || last - first < 2) return m;
  const int64_t settle_from =
      std::max(oldest, first - static_cast<int64_t>(std::llround(kSettleS * s.sample_rate_hz)));
  std::vector<float> x(static_cast<size_t>(last - settle_from + 1));
  for (int64_t i = settle_from; i <= last; ++i) {
    const float v = s.history[static_cast<size_t>(i % size)];
    x[static_cast<size_t>(i - settle_from)] = v == v ? v : 0.0f;  // NaN: an invalid sample
  }
  m.low_frequency =
      LowFrequencyFraction(x, static_cast<size_t>(first - settle_from), s.sample_rate_hz);
  return m;
}

bool VentricularTachycardiaDetector::IsArtifact(const ArtifactMeasures& m) const {
  // Unknown measures never veto: a run that cannot be judged alarms.
  return !std::isnan(m.low_frequency) && !std::isnan(m.rr_change) &&
         m.low_frequency > options_.artifact_low_frequency_min &&
         m.rr_change > options_.artifact_rr_change_min;
}

void VentricularTachycardiaDetector::Stop(State& s, ops::Events& out) const {
  if (s.open) {
    out.push_back(MakeEpisode(ops::EpisodeKind::kVentricularTachycardia,
                              ops::Episode::Phase::kClosed, s.run_start_us, s.last_v_us,
                              Explain(s)));
  }
  s.open = false;
  s.run_beats = 0;
  s.run_v_beats = 0;
  s.interruptions = 0;
  s.run_rr_sum_s = 0;
  s.run_times.clear();
  s.low_frequency = NAN;
  s.rr_change = NAN;
}

void VentricularTachycardiaDetector::OnGap(State& s, ops::Events& out) const {
  Stop(s, out);
  s.written = 0;
}

void VentricularTachycardiaDetector::OnBeat(State& s, const ops::Beat& beat, bool usable,
                                            ops::Events& out) const {
  const bool ventricular = beat.label == ops::BeatClass::kVentricular;
  if (!usable ||
      (!ventricular && (s.run_beats == 0 || s.interruptions >= options_.max_interruptions))) {
    Stop(s, out);
    return;
  }
  if (s.run_beats == 0) {
    s.run_start_us = beat.time_us;
  } else {
    s.run_rr_sum_s += beat.rr_s;
  }
  ++s.run_beats;
  if (!ventricular) {
    ++s.interruptions;
    return;
  }
  s.interruptions = 0;
  ++s.run_v_beats;
  s.last_v_us = beat.time_us;
  s.run_times.push_back(beat.time_us);
  while (s.run_times.size() > static_cast<size_t>(options_.artifact_beats)) {
    s.run_times.pop_front();
  }
  if (!s.open && s.run_v_beats >= options_.min_beats &&
      60.0 * (s.run_beats - 1) >= options_.min_rate_bpm * s.run_rr_sum_s) {
    const auto artifact = Artifact(s);
    s.low_frequency = artifact.low_frequency;
    s.rr_change = artifact.rr_change;
    if (IsArtifact(artifact)) return;  // judged again at the next V beat
    s.open = true;
    out.push_back(MakeEpisode(ops::EpisodeKind::kVentricularTachycardia,
                              ops::Episode::Phase::kOpened, s.run_start_us, 0, Explain(s)));
  }
}

void VentricularTachycardiaDetector::State::Save(ops::SnapshotWriter& w) const {
  w.Put<int32_t>(run_beats);
  w.Put<int32_t>(run_v_beats);
  w.Put<int32_t>(interruptions);
  w.Put<double>(run_rr_sum_s);
  w.Put<int64_t>(run_start_us);
  w.Put<int64_t>(last_v_us);
  w.Put<uint8_t>(open);
  const std::vector<int64_t> times(run_times.begin(), run_times.end());
  w.PutSpan<int64_t>(times);
  w.Put<double>(low_frequency);
  w.Put<double>(rr_change);
  w.Put<double>(sample_rate_hz);
  w.PutSpan<float>(history);
  w.Put<uint64_t>(written);
  anchor.Save(w);
}

void VentricularTachycardiaDetector::State::Load(ops::SnapshotReader& r, bool with_interruptions) {
  run_beats = r.Get<int32_t>();
  // Before runs could hold other beats, every beat of a run was ventricular.
  run_v_beats = with_interruptions ? r.Get<int32_t>() : run_beats;
  interruptions = with_interruptions ? r.Get<int32_t>() : 0;
  if (run_v_beats < 0 || run_v_beats > run_beats || interruptions < 0) {
    throw ops::SnapshotError("vt detector: inconsistent run");
  }
  run_rr_sum_s = r.Get<double>();
  run_start_us = r.Get<int64_t>();
  last_v_us = r.Get<int64_t>();
  open = r.Get<uint8_t>() != 0;
  const auto times = r.GetVector<int64_t>(64);
  run_times.assign(times.begin(), times.end());
  low_frequency = r.Get<double>();
  rr_change = r.Get<double>();
  sample_rate_hz = r.Get<double>();
  if (!(sample_rate_hz == 0 || (sample_rate_hz > 0 && sample_rate_hz <= kMaxRateHz))) {
    throw ops::SnapshotError("vt detector: bad sample rate");
  }
  // The longest history (12 beats at 40 bpm, 21 s) at the highest rate bounds the size; the
  // exact size follows the options and is checked by OnSamples.
  history = r.GetVector<float>(static_cast<size_t>(30 * kMaxRateHz));
  written = r.Get<uint64_t>();
  anchor.Load(r);
  if ((history.empty() && written != 0) || written > (uint64_t{1} << 62) || anchor.sample < 0 ||
      static_cast<uint64_t>(anchor.sample) > written) {
    throw ops::SnapshotError("vt detector: inconsistent history");
  }
}

}  // namespace vigil::ecg
