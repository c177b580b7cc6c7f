#include "operators/ecg/rhythm_analyzer.h"

#include <algorithm>
#include <cmath>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/ecg/heart_rate.h"

namespace vigil::ecg {

namespace {
// 2: AF intervals carry PR-interval segments; 3: AF onset bounds (last episode end, last P
// waves) and the close hold; 4: the VT detector's raw-signal history (artefact veto); 5: the
// heart-rate limits' run of consecutive beats and the VT run's interruptions
constexpr uint32_t kSnapshotVersion = 5;
}  // namespace

const ops::ParameterTable<RhythmOptions>& RhythmParameters() {
  static const ops::ParameterTable<RhythmOptions> table = [] {
    ops::ParameterTable<RhythmOptions> t = {};
    t.Include(&RhythmOptions::hr, HeartRateLimitParameters())
        .Include(&RhythmOptions::absence, BeatAbsenceParameters())
        .Include(&RhythmOptions::vt, VtParameters())
        .Include(&RhythmOptions::vf, VfParameters())
        .Include(&RhythmOptions::af, AfParameters())
        .Include(&RhythmOptions::quality, SignalQualityParameters());
    return t;
  }();
  return table;
}

void DeriveRhythmOptions(RhythmOptions& o) {
  o.vf.step_s =
      o.quality.block_s;  // VF windows step with the quality blocks they are judged against
}

RhythmOptions RhythmOptionsFrom(const ops::Parameters& parameters) {
  auto o = RhythmParameters().Read(kEcgOperatorName, parameters);
  DeriveRhythmOptions(o);
  return o;
}

RhythmAnalyzer::RhythmAnalyzer(const RhythmOptions& o)
    : options_(o),
      quality_(EcgSignalQuality::Make(o.quality)),
      vf_(VentricularFibrillationDetector::Make(o.vf)),
      af_(AtrialFibrillationDetector::Make(o.af)),
      vt_(VentricularTachycardiaDetector::Make(o.vt)),
      hr_(HeartRateLimits::Make(o.hr)),
      absence_(BeatAbsenceDetector::Make(o.absence)) {}

RhythmAnalyzer RhythmAnalyzer::Make(const RhythmOptions& options) {
  return RhythmAnalyzer(options);
}

bool RhythmAnalyzer::Usable(const RhythmState& s, ops::TimeUs from_us, ops::TimeUs to_us) const {
  bool judged = false;
  for (const auto& block : s.quality_.recent) {
    if (block.end_us <= from_us || block.start_us >= to_us) continue;
    if (block.flags != 0) return false;
    judged = true;
  }
  return judged;
}

std::unique_ptr<RhythmState> RhythmAnalyzer::MakeState() const {
  return std::make_unique<RhythmState>();
}

void RhythmAnalyzer::OnBeat(RhythmState& s, const ops::Beat& in, const AtrialSegment* atrial,
                            ops::Events& out) const {
  if (in.time_us <= s.last_beat_us_) return;  // repeated or out of order: already counted
  ops::Beat beat = in;
  if (s.after_gap_) {
    // The interval spans the gap: it is no RR interval.
    beat.rr_s = 0;
    beat.heart_rate_bpm = 0;
    s.after_gap_ = false;
  }
  s.last_beat_us_ = beat.time_us;
  s.recent_beats_.push_back(beat.time_us);
  while (s.recent_beats_.size() > 16) s.recent_beats_.pop_front();
  const bool usable = EcgSignalQuality::FlagsAt(s.quality_, beat.time_us) == 0;
  absence_.OnBeat(s.absence_, beat.time_us, out);
  // QRS amplitude in the VF detector's band-passed ring (which holds the last window_s).
  const auto half = ops::FromSeconds(0.05);
  const float amplitude = VentricularFibrillationDetector::FilteredPeakToPeak(
      s.vf_, beat.time_us - half, beat.time_us + half);
  af_.OnBeat(s.af_, beat, usable, amplitude, atrial, out);
  vt_.OnBeat(s.vt_, beat, usable, out);
  hr_.OnBeat(s.hr_, beat, usable, out);
}

void RhythmAnalyzer::ProcessBlock(RhythmState& s, const ops::Chunk& part,
                                  std::span<const ops::Beat> beats,
                                  std::span<const AtrialSegment> atrial, size_t& next_beat,
                                  ops::TimeUs beats_final_until_us, ops::Events& out) const {
  std::vector<QualityBlock> blocks;
  quality_.Process(s.quality_, part, blocks, out);
  for (const auto& b : blocks) {
    if (b.flags || std::fabs(b.baseline_shift_mv) >= options_.absence.baseline_shift_mv) {
      absence_.OnUnusable(s.absence_, b.start_us, b.end_us, out);
    }
  }
  const auto usable = [&s, this](ops::TimeUs from, ops::TimeUs to) {
    for (const auto& b : s.quality_.recent) {
      if (b.end_us > from && b.start_us < to && b.flags) return false;
    }
    return !OrganizedRhythm(s, from, to);
  };
  std::vector<VfWindowFeatures> windows;
  vf_.Process(s.vf_, part, usable, out, &windows);
  vt_.OnSamples(s.vt_, part);
  for (const auto& w : windows) {
    if (w.fibrillatory) absence_.OnUnusable(s.absence_, w.start_us, w.end_us, out);
    const auto step_us = ops::FromSeconds(options_.vf.step_s);
    s.steps_.push_back({w.end_us - step_us, w.end_us, static_cast<float>(w.step_max_slope_mv_s),
                        static_cast<float>(w.step_p2p_mv)});
    while (s.steps_.size() > 64) s.steps_.pop_front();
  }
  const auto end_us = part.end_us();
  while (next_beat < beats.size() && beats[next_beat].time_us < end_us) {
    OnBeat(s, beats[next_beat], next_beat < atrial.size() ? &atrial[next_beat] : nullptr, out);
    ++next_beat;
  }
  s.last_sample_us_ = end_us;
  AdvanceAbsence(s, std::min(end_us, beats_final_until_us), out);
}

bool RhythmAnalyzer::OrganizedRhythm(const RhythmState& s, ops::TimeUs from_us,
                                     ops::TimeUs to_us) const {
  if (options_.vf.organized_rate_max_bpm <= 0) return false;
  // Beats lag the waveform by the detector's delay: look back that much further.
  const auto r = RegularityOf(s.recent_beats_, from_us - ops::FromSeconds(3.0), to_us, 0.15);
  if (r.intervals < 2) return false;
  if (r.median_s <= 0 || 60 / r.median_s >= options_.vf.organized_rate_max_bpm) return false;
  return 2 * r.within >= r.intervals;
}

void RhythmAnalyzer::AdvanceAbsence(RhythmState& s, ops::TimeUs now_us, ops::Events& out) const {
  // Beats are final up to now_us, so a step that ended by then is known to hold a beat or not.
  while (!s.steps_.empty() && s.steps_.front().end_us <= now_us) {
    const auto step = s.steps_.front();
    s.steps_.pop_front();
    bool has_beat = false;
    for (const auto t : s.recent_beats_) has_beat |= t >= step.start_us && t < step.end_us;
    if (has_beat) {
      // The patient's QRS slope: median of the last 8 steps with a beat (robust to artefacts
      // the detector took for beats).
      s.beat_step_slopes_.push_back(step.max_slope_mv_s);
      while (s.beat_step_slopes_.size() > 8) s.beat_step_slopes_.pop_front();
      std::vector<float> v(s.beat_step_slopes_.begin(), s.beat_step_slopes_.end());
      std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(v.size() / 2), v.end());
      s.qrs_slope_mv_s_ = v[v.size() / 2];
      continue;
    }
    double limit = options_.absence.activity_slope_mv_s;
    if (s.qrs_slope_mv_s_ > 0) {
      limit = std::min(limit, options_.absence.activity_ratio * s.qrs_slope_mv_s_);
    }
    if (step.max_slope_mv_s >= limit || step.p2p_mv >= options_.absence.activity_p2p_mv) {
      absence_.OnUnusable(s.absence_, step.start_us, step.end_us, out);
    }
  }
  absence_.AdvanceTo(s.absence_, now_us, out);
}

void RhythmAnalyzer::Process(RhythmState& s, const ops::Chunk& ecg,
                             std::span<const ops::Beat> beats, ops::TimeUs beats_final_until_us,
                             ops::Events& out, std::span<const AtrialSegment> atrial) const {
  if (!s.started_ && !ecg.values.empty()) {
    s.started_ = true;
    absence_.Start(s.absence_, ecg.first_sample_us);
  }
  size_t next_beat = 0;
  // Walk the chunk one quality block at a time so that quality verdicts, VF windows, beats and
  // the passage of time reach the detectors in time order, however large the chunk.
  const auto per_block =
      static_cast<size_t>(std::max(3.0, std::round(options_.quality.block_s * ecg.sample_rate_hz)));
  size_t i = 0;
  while (i < ecg.values.size()) {
    const size_t filled =
        s.quality_.sample_rate_hz == ecg.sample_rate_hz ? s.quality_.block.size() : 0;
    const size_t n = std::min(per_block - std::min(filled, per_block - 1), ecg.values.size() - i);
    ops::Chunk part{
        ops::SampleTime(ecg.first_sample_us, ecg.sample_rate_hz, static_cast<int64_t>(i)),
        ecg.sample_rate_hz, ecg.values.subspan(i, n)};
    ProcessBlock(s, part, beats, atrial, next_beat, beats_final_until_us, out);
    i += n;
  }
  for (; next_beat < beats.size(); ++next_beat) {
    OnBeat(s, beats[next_beat], next_beat < atrial.size() ? &atrial[next_beat] : nullptr, out);
  }
  AdvanceAbsence(s, std::min(s.last_sample_us_, beats_final_until_us), out);
}

void RhythmAnalyzer::OnGap(RhythmState& s, ops::TimeUs from_us, ops::TimeUs to_us,
                           ops::Events& out) const {
  quality_.OnGap(s.quality_, from_us, to_us);
  vf_.OnGap(s.vf_, out);
  af_.Stop(s.af_, out);
  vt_.OnGap(s.vt_, out);
  hr_.Stop(s.hr_, out);
  absence_.Stop(s.absence_, from_us, out);
  absence_.OnUnusable(s.absence_, from_us, to_us, out);
  s.after_gap_ = true;
}

void RhythmAnalyzer::OnLeadOff(RhythmState& s, bool off) const {
  quality_.SetLeadOff(s.quality_, off);
}

void RhythmAnalyzer::Finish(RhythmState& s, ops::Events& out) const {
  quality_.Finish(s.quality_, out);
  vf_.Finish(s.vf_, out);
  af_.Stop(s.af_, out);
  vt_.Stop(s.vt_, out);
  hr_.Stop(s.hr_, out);
  absence_.Stop(s.absence_, s.last_sample_us_, out);
}

void RhythmState::Save(ops::SnapshotWriter& w) const {
  w.Put<uint32_t>(kSnapshotVersion);
  w.Put<uint64_t>(steps_.size());
  for (const auto& st : steps_) {
    w.Put<int64_t>(st.start_us);
    w.Put<int64_t>(st.end_us);
    w.Put<float>(st.max_slope_mv_s);
    w.Put<float>(st.p2p_mv);
  }
  const std::vector<int64_t> beats(recent_beats_.begin(), recent_beats_.end());
  w.PutSpan<int64_t>(beats);
  const std::vector<float> slopes(beat_step_slopes_.begin(), beat_step_slopes_.end());
  w.PutSpan<float>(slopes);
  w.Put<double>(qrs_slope_mv_s_);
  w.Put<uint8_t>(started_);
  w.Put<uint8_t>(after_gap_);
  w.Put<int64_t>(last_sample_us_);
  w.Put<int64_t>(last_beat_us_);
  quality_.Save(w);
  vf_.Save(w);
  af_.Save(w);
  vt_.Save(w);
  hr_.Save(w);
  absence_.Save(w);
}

void RhythmState::Load(ops::SnapshotReader& r) {
  // Version 4 (the release before) still restores: its heart-rate limits lack the beat run,
  // which starts afresh, so a rolling upgrade keeps every patient's rhythm state.
  const uint32_t version = ops::ReadVersion(r, "rhythm", kSnapshotVersion, 4);
  const auto n = r.Get<uint64_t>();
  if (n > 64) throw ops::SnapshotError("rhythm: too many steps");
  steps_.clear();
  for (uint64_t i = 0; i < n; ++i) {
    Step st;
    st.start_us = r.Get<int64_t>();
    st.end_us = r.Get<int64_t>();
    st.max_slope_mv_s = r.Get<float>();
    st.p2p_mv = r.Get<float>();
    steps_.push_back(st);
  }
  const auto beats = r.GetVector<int64_t>(16);
  recent_beats_.assign(beats.begin(), beats.end());
  const auto slopes = r.GetVector<float>(8);
  beat_step_slopes_.assign(slopes.begin(), slopes.end());
  qrs_slope_mv_s_ = r.Get<double>();
  started_ = r.Get<uint8_t>() != 0;
  after_gap_ = r.Get<uint8_t>() != 0;
  last_sample_us_ = r.Get<int64_t>();
  last_beat_us_ = r.Get<int64_t>();
  quality_.Load(r);
  vf_.Load(r);
  af_.Load(r);
  vt_.Load(r, version >= 5);
  hr_.Load(r, version >= 5);
  absence_.Load(r);
  r.ExpectEnd();
}

std::string RhythmState::Snapshot() const {
  ops::SnapshotWriter w;
  Save(w);
  return w.Take();
}

void RhythmState::Restore(std::string_view bytes) {
  RhythmState fresh;
  ops::SnapshotReader r(bytes);
  fresh.Load(r);  // throws before this state is touched
  *this = std::move(fresh);
}

}  // namespace vigil::ecg
