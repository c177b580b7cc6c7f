#include "operators/ecg/ecg_monitor.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "operators/core/options.h"

namespace vigil::ecg {
namespace {

constexpr uint32_t kSnapshotVersion = 5;  // 2: rhythm stage state; 3: atrial segments;
                                          // 4: AF onset bound; 5: AF close hold
constexpr std::array<ops::Signal, 1> kInputs = {ops::Signal::kEcg};
constexpr double kMinRate = 125, kMaxRate = 1000;

EcgMonitorState& Cast(ops::OperatorState& state) {
  auto* s = dynamic_cast<EcgMonitorState*>(&state);
  if (!s) throw std::invalid_argument("ecg.arrhythmia: state of another operator");
  return *s;
}

std::string Prefix() { return std::string(EcgMonitor::kName) + "."; }

}  // namespace

std::unique_ptr<const EcgMonitor> EcgMonitor::Make(const ops::Parameters& parameters) {
  ops::ParameterReader p(std::string(kName), parameters);
  EcgMonitorOptions o;
  QrsOptions& q = o.qrs;
  q.notch_hz = p.Get("notch_hz", q.notch_hz);
  q.notch_q = p.Get("notch_q", q.notch_q);
  q.baseline_hz = p.Get("baseline_hz", q.baseline_hz);
  q.lowpass_hz = p.Get("lowpass_hz", q.lowpass_hz);
  q.band_low_hz = p.Get("band_low_hz", q.band_low_hz);
  q.band_high_hz = p.Get("band_high_hz", q.band_high_hz);
  q.integration_s = p.Get("integration_s", q.integration_s);
  q.peak_hold_s = p.Get("peak_hold_s", q.peak_hold_s);
  q.threshold_fraction = p.Get("threshold_fraction", q.threshold_fraction);
  q.refractory_s = p.Get("refractory_s", q.refractory_s);
  q.t_wave_s = p.Get("t_wave_s", q.t_wave_s);
  q.searchback_factor = p.Get("searchback_factor", q.searchback_factor);
  q.learning_s = p.Get("learning_s", q.learning_s);
  q.min_slope_mv_s = p.Get("min_slope_mv_s", q.min_slope_mv_s);
  q.replace_ratio = p.Get("replace_ratio", q.replace_ratio);
  BeatClassifierOptions& c = o.classifier;
  const double learning_beats = p.Get("learning_beats", c.learning_beats);
  ops::Require(learning_beats == std::floor(learning_beats), Prefix() + "learning_beats",
               learning_beats, "must be a whole number");
  ops::RequireRange(Prefix() + "learning_beats", learning_beats, 3, 50);
  c.learning_beats = static_cast<int>(learning_beats);
  const double max_templates = p.Get("max_templates", c.max_templates);
  ops::Require(max_templates == std::floor(max_templates), Prefix() + "max_templates",
               max_templates, "must be a whole number");
  ops::RequireRange(Prefix() + "max_templates", max_templates, 2, 16);
  c.max_templates = static_cast<int>(max_templates);
  c.match_corr = p.Get("match_corr", c.match_corr);
  c.v_corr = p.Get("v_corr", c.v_corr);
  c.wide_ratio = p.Get("wide_ratio", c.wide_ratio);
  c.amplitude_ratio = p.Get("amplitude_ratio", c.amplitude_ratio);
  c.premature_ratio = p.Get("premature_ratio", c.premature_ratio);
  o.rhythm = RhythmOptionsFrom(p);
  p.CheckAllUsed();
  return Make(o);
}

std::unique_ptr<const EcgMonitor> EcgMonitor::Make(const EcgMonitorOptions& options) {
  // Range checks independent of the rate (validated at the highest supported rate; the
  // rate-dependent corners are adapted in QrsOptionsAt).
  QrsOptions q = options.qrs;
  q.sample_rate_hz = kMaxRate;
  ValidateQrsOptions(q, Prefix());
  if (q.notch_hz != 0) ops::RequireRange(Prefix() + "notch_hz", q.notch_hz, 40, 70);
  ValidateBeatClassifierOptions(options.classifier, Prefix());
  try {
    return std::unique_ptr<const EcgMonitor>(new EcgMonitor(options));
  } catch (const ops::OptionError& e) {
    // The rhythm stage names its fields without the operator prefix.
    throw ops::OptionError(Prefix() + e.field(), "", e.what());
  }
}

QrsOptions EcgMonitor::QrsOptionsAt(double fs) const {
  QrsOptions q = options_.qrs;
  q.sample_rate_hz = fs;
  const double nyquist = fs / 2;
  // Mains above ~Nyquist cannot be notched (and was removed by the device's anti-aliasing).
  if (q.notch_hz >= nyquist * 0.98) q.notch_hz = 0;
  if (q.lowpass_hz > nyquist * 0.95) q.lowpass_hz = std::floor(nyquist * 0.9);
  return q;
}

std::span<const ops::Signal> EcgMonitor::inputs() const { return kInputs; }

std::unique_ptr<ops::OperatorState> EcgMonitor::MakeState() const {
  return std::unique_ptr<ops::OperatorState>(new EcgMonitorState(*this));
}

void EcgMonitor::Process(ops::OperatorState& state, ops::Signal signal, const ops::Chunk& chunk,
                         ops::Events& out) const {
  auto& s = Cast(state);
  if (signal != ops::Signal::kEcg || chunk.values.empty()) return;
  if (!(chunk.sample_rate_hz >= kMinRate && chunk.sample_rate_hz <= kMaxRate)) return;
  if (chunk.sample_rate_hz != s.sample_rate_hz_) {
    if (s.qrs_) Finish(state, out);
    s.Start(chunk.sample_rate_hz);
  }
  // Beat times come from one anchor so they do not depend on how the stream was chunked; the
  // anchor moves only when the device clock departs from the sample count (drift, jitter
  // beyond 1 ms, the first chunk after a gap).
  s.anchor_.OnChunk(s.qrs_->samples_seen(), chunk.first_sample_us, chunk.sample_rate_hz);
  s.detections_.clear();
  s.qrs_->Process(chunk.values, s.detections_);
  s.Emit(s.detections_, out);
  // No beat can still come before the oldest beat waiting for its label, nor, because of the
  // detector's search-back, before about 1.5 mean RR ago.
  ops::TimeUs final_until =
      chunk.end_us() - ops::FromSeconds(std::clamp(1.5 * s.mean_rr_s_ + 0.1, 0.5, 3.0));
  if (!s.waiting_.empty()) final_until = std::min(final_until, s.waiting_.front().time_us - 1);
  RunRhythm(s, chunk, final_until, out);
}

void EcgMonitor::RunRhythm(EcgMonitorState& s, const ops::Chunk& chunk,
                           ops::TimeUs beats_final_until_us, ops::Events& out) const {
  rhythm_.Process(*s.rhythm_, chunk, s.new_beats_, beats_final_until_us, out, s.new_atrial_);
  s.new_beats_.clear();
  s.new_atrial_.clear();
}

void EcgMonitor::OnDeviceEvent(ops::OperatorState& state, const ops::DeviceEventView& event,
                               ops::Events&) const {
  auto& s = Cast(state);
  if (event.type == ops::DeviceEventView::Type::kLeadOff) rhythm_.OnLeadOff(*s.rhythm_, true);
  if (event.type == ops::DeviceEventView::Type::kLeadOn) rhythm_.OnLeadOff(*s.rhythm_, false);
}

void EcgMonitor::OnGap(ops::OperatorState& state, ops::Signal signal, ops::TimeUs from_us,
                       ops::TimeUs to_us, ops::Events& out) const {
  auto& s = Cast(state);
  if (signal != ops::Signal::kEcg || !s.qrs_) return;
  s.detections_.clear();
  s.qrs_->Restart(s.detections_);
  s.Emit(s.detections_, out);
  RunRhythm(s, ops::Chunk{from_us, s.sample_rate_hz_, {}}, from_us, out);
  rhythm_.OnGap(*s.rhythm_, from_us, to_us, out);
  s.last_beat_sample_ = -1;
  s.heart_rate_.Reset();
  s.anchor_.set = false;
}

void EcgMonitor::Finish(ops::OperatorState& state, ops::Events& out) const {
  auto& s = Cast(state);
  if (!s.qrs_) return;
  s.detections_.clear();
  s.qrs_->Flush(s.detections_);
  s.Emit(s.detections_, out);
  s.classified_.clear();
  s.classifier_->Flush(s.classified_);
  s.EmitClassified(out);
  RunRhythm(s, ops::Chunk{0, s.sample_rate_hz_, {}}, std::numeric_limits<ops::TimeUs>::max(),
            out);
  rhythm_.Finish(*s.rhythm_, out);
}

void EcgMonitorState::Start(double fs) {
  sample_rate_hz_ = fs;
  qrs_.emplace(op_->QrsOptionsAt(fs));
  classifier_.emplace(op_->options().classifier, fs);
  heart_rate_.Reset();
  anchor_ = {};
  last_beat_sample_ = -1;
  waiting_.clear();
  waiting_first_id_ = 0;
  rhythm_ = op_->rhythm().MakeState();
  new_beats_.clear();
  new_atrial_.clear();
  mean_rr_s_ = 0.8;
}

ops::TimeUs EcgMonitorState::TimeOf(int64_t sample) const {
  return anchor_.TimeOf(sample, sample_rate_hz_);
}

void EcgMonitorState::Emit(std::vector<QrsDetection>& detections, ops::Events& out) {
  const int pre = classifier_->pre();
  window_.resize(static_cast<size_t>(classifier_->window_size()));
  classified_.clear();
  for (const auto& d : detections) {
    // Defensive: fiducial points must increase (two detections can only collide when one
    // replaced a neighbour's window); a duplicate would be a false beat.
    if (last_beat_sample_ >= 0 && d.sample <= last_beat_sample_) continue;
    Waiting w;
    w.sample = d.sample;
    w.time_us = TimeOf(d.sample);
    w.rr_s = last_beat_sample_ >= 0
                 ? static_cast<float>(static_cast<double>(d.sample - last_beat_sample_) /
                                      sample_rate_hz_)
                 : 0.0f;
    w.heart_rate_bpm = w.rr_s > 0 ? heart_rate_.Add(w.rr_s) : heart_rate_.Current();
    const int64_t atrial_first =
        d.conditioned_index - static_cast<int64_t>(AtrialSegment::kLeadS * sample_rate_hz_ + 1);
    if (atrial_first >= 0 && atrial_first >= qrs_->samples_seen() - qrs_->ring_capacity()) {
      w.atrial = ExtractAtrialSegment([this](int64_t k) { return qrs_->Conditioned(k); },
                                      d.conditioned_index, sample_rate_hz_);
    }
    last_beat_sample_ = d.sample;
    const int64_t id = waiting_first_id_ + static_cast<int64_t>(waiting_.size());
    waiting_.push_back(w);
    qrs_->CopyConditioned(d.conditioned_index - pre, window_);
    classifier_->Add(id, window_, w.rr_s, classified_);
  }
  EmitClassified(out);
}

void EcgMonitorState::EmitClassified(ops::Events& out) {
  for (const auto& c : classified_) {
    if (waiting_.empty() || c.id != waiting_first_id_) {
      throw std::logic_error("ecg.arrhythmia: classifier released beats out of order");
    }
    const Waiting w = waiting_.front();
    waiting_.pop_front();
    ++waiting_first_id_;
    ops::Beat beat;
    beat.time_us = w.time_us;
    beat.sample = w.sample;
    beat.label = static_cast<ops::BeatClass>(c.label);
    beat.rr_s = w.rr_s;
    beat.heart_rate_bpm = w.heart_rate_bpm;
    new_atrial_.push_back(w.atrial);
    OnBeat(beat, out);
  }
  classified_.clear();
}

void EcgMonitorState::OnBeat(const ops::Beat& beat, ops::Events& out) {
  out.emplace_back(beat);
  new_beats_.push_back(beat);
  if (beat.rr_s > 0) mean_rr_s_ += 0.125 * (std::min(beat.rr_s, 3.0f) - mean_rr_s_);
}

std::string EcgMonitorState::Snapshot() const {
  ops::SnapshotWriter w;
  w.Put<uint32_t>(kSnapshotVersion);
  w.Put<double>(sample_rate_hz_);
  if (sample_rate_hz_ > 0) {
    qrs_->Save(w);
    classifier_->Save(w);
    heart_rate_.Save(w);
    anchor_.Save(w);
    w.Put<int64_t>(last_beat_sample_);
    w.Put<int64_t>(waiting_first_id_);
    w.Put<uint64_t>(waiting_.size());
    for (const auto& x : waiting_) {
      w.Put<int64_t>(x.sample);
      w.Put<int64_t>(x.time_us);
      w.Put<float>(x.rr_s);
      w.Put<float>(x.heart_rate_bpm);
      x.atrial.Save(w);
    }
    // Beats are handed to the rhythm stage within the call that emitted them, so none is
    // pending between calls.
    w.PutString(rhythm_->Snapshot());
    w.Put<double>(mean_rr_s_);
  }
  return w.Take();
}

void EcgMonitorState::Restore(std::string_view bytes) {
  ops::SnapshotReader r(bytes);
  if (r.Get<uint32_t>() != kSnapshotVersion) {
    throw ops::SnapshotError("ecg.arrhythmia: unknown snapshot version");
  }
  EcgMonitorState s(*op_);
  const double fs = r.Get<double>();
  if (fs != 0) {
    if (!(fs >= kMinRate && fs <= kMaxRate)) throw ops::SnapshotError("ecg.arrhythmia: bad rate");
    s.Start(fs);
    s.qrs_->Load(r);
    s.classifier_->Load(r);
    s.heart_rate_.Load(r);
    s.anchor_.Load(r);
    s.last_beat_sample_ = r.Get<int64_t>();
    s.waiting_first_id_ = r.Get<int64_t>();
    const auto n = r.Get<uint64_t>();
    if (n > 1000) throw ops::SnapshotError("ecg.arrhythmia: too many waiting beats");
    for (uint64_t i = 0; i < n; ++i) {
      Waiting x;
      x.sample = r.Get<int64_t>();
      x.time_us = r.Get<int64_t>();
      x.rr_s = r.Get<float>();
      x.heart_rate_bpm = r.Get<float>();
      x.atrial.Load(r);
      s.waiting_.push_back(x);
    }
    s.rhythm_->Restore(r.GetString());
    s.mean_rr_s_ = r.Get<double>();
  }
  r.ExpectEnd();
  sample_rate_hz_ = s.sample_rate_hz_;
  qrs_ = std::move(s.qrs_);
  classifier_ = std::move(s.classifier_);
  heart_rate_ = s.heart_rate_;
  anchor_ = s.anchor_;
  last_beat_sample_ = s.last_beat_sample_;
  waiting_ = std::move(s.waiting_);
  waiting_first_id_ = s.waiting_first_id_;
  rhythm_ = s.rhythm_ ? std::move(s.rhythm_) : op_->rhythm().MakeState();
  new_beats_.clear();
  new_atrial_.clear();
  mean_rr_s_ = s.mean_rr_s_;
}

}  // namespace vigil::ecg
