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

constexpr uint32_t kSnapshotVersion = 6;  // 2: rhythm stage state; 3: atrial segments;
                                          // 4: AF onset bound; 5: AF close hold;
                                          // 6: other leads, pulses, held alarms
constexpr std::array<ops::Signal, 3> kInputs = {ops::Signal::kEcg, ops::Signal::kPlethysmogram,
                                                ops::Signal::kArterialPressure};
constexpr size_t kMaxOtherLeads = 11;        // a 12-lead device at most
constexpr double kLeadWaitS = 4;             // how long a VT run waits for another lead's beats
constexpr size_t kMaxLeadBeats = 160;        // another lead's beats kept: 30 s at 300 bpm
constexpr ops::TimeUs kLeadGapUs = 500'000;  // a hole in another lead's chunks: restart it

int PulseIndex(ops::Signal signal) {
  if (signal == ops::Signal::kPlethysmogram) return 0;
  if (signal == ops::Signal::kArterialPressure) return 1;
  return -1;
}

// Index of a verified kind (bits of EcgMonitorState::open_); -1 for the others.
int VerifiedIndex(ops::EpisodeKind kind) {
  switch (kind) {
    case ops::EpisodeKind::kAsystole:
      return 0;
    case ops::EpisodeKind::kVentricularTachycardia:
      return 1;
    case ops::EpisodeKind::kVentricularFibrillation:
      return 2;
    case ops::EpisodeKind::kVentricularFlutter:
      return 3;
    default:
      return -1;
  }
}

bool Verified(ops::EpisodeKind kind) {
  return VerifiedIndex(kind) >= 0;
}

// Regular beats in [from_us, to_us]: at least 3, 75 % of the intervals within 25 % of their
// median (the pulse detector's regularity rule). Returns the rate from the median interval,
// 0 when not regular; `count` is the beats in the window.
double RegularRate(const std::deque<ops::TimeUs>& beats, ops::TimeUs from_us, ops::TimeUs to_us,
                   int& count) {
  const auto r = RegularityOf(beats, from_us, to_us, 0.25);
  count = r.beats;
  if (r.intervals < 2 || r.median_s <= 0 || r.within < 0.75 * r.intervals) return 0;
  return 60.0 / r.median_s;
}
constexpr double kMinRate = 125, kMaxRate = 1000;

EcgMonitorState& Cast(ops::OperatorState& state) {
  return ops::StateCast<EcgMonitorState>(state, EcgMonitor::kName);
}

}  // namespace

const ops::ParameterTable<EcgMonitorOptions>& EcgMonitorParameters() {
  using O = EcgMonitorOptions;
  static const ops::ParameterTable<O> table = [] {
    ops::ParameterTable<O> t = {
        {"verify_alarms", &O::verify_alarms, 0, 1, "",
         "1: other leads and pulsatile signals verify life-threatening alarms; 0: the primary "
         "lead decides alone"},
    };
    t.Include(&O::qrs, QrsParameters())
        .Include(&O::classifier, BeatClassifierParameters())
        .Include(&O::rhythm, RhythmParameters())
        .Include(&O::pulse, PulseParameters());
    return t;
  }();
  return table;
}

const ops::OperatorSpec& EcgMonitor::Spec() {
  using ops::AlarmPriority;
  using ops::SignalFamily;
  using K = ops::EpisodeKind;
  constexpr auto kEcg = SignalFamily::kEcg;
  static const ops::OperatorSpec spec{
      kName,
      kVersion,
      "ECG (every lead) with PLETH / ABP: filters, QRS detection, N/V/Q beat classification, "
      "heart rate, rhythm alarms verified across the signals",
      kInputs,
      EcgMonitorParameters().Describe(),
      // Priorities and latching after shared/CLINICAL.md (IEC 60601-1-8).
      {{K::kAsystole, "ASYSTOLE", AlarmPriority::kHigh, true, false, 0, kEcg},
       {K::kVentricularFibrillation, "VENTRICULAR_FIBRILLATION", AlarmPriority::kHigh, true, false,
        0, kEcg},
       {K::kVentricularFlutter, "VENTRICULAR_FIBRILLATION", AlarmPriority::kHigh, true, false, 0,
        kEcg},
       {K::kVentricularTachycardia, "VENTRICULAR_TACHYCARDIA", AlarmPriority::kHigh, false, false,
        0, kEcg},
       {K::kExtremeBradycardia, "EXTREME_BRADYCARDIA", AlarmPriority::kHigh, false, false, 0, kEcg},
       {K::kExtremeTachycardia, "EXTREME_TACHYCARDIA", AlarmPriority::kHigh, false, false, 0, kEcg},
       {K::kPause, "PAUSE", AlarmPriority::kMedium, false, false, 0, kEcg},
       {K::kBradycardia, "BRADYCARDIA", AlarmPriority::kMedium, false, false, 0, kEcg},
       {K::kTachycardia, "TACHYCARDIA", AlarmPriority::kMedium, false, false, 0, kEcg},
       // CLINICAL.md: an AF episode lasts at least 30 s.
       {K::kAtrialFibrillation, "ATRIAL_FIBRILLATION", AlarmPriority::kMedium, false, false, 30,
        kEcg},
       {K::kEcgNoise, "ECG_NOISE", AlarmPriority::kLow, false, true, 10, kEcg},
       {K::kEcgLeadOff, "ECG_LEAD_OFF", AlarmPriority::kLow, false, true, 10, kEcg},
       {K::kEcgFlatLine, "ECG_FLAT_LINE", AlarmPriority::kLow, false, true, 10, kEcg},
       {K::kEcgSaturation, "ECG_SATURATION", AlarmPriority::kLow, false, true, 10, kEcg}},
      {},
      [](const ops::Parameters& p, const ops::OperatorContext&)
          -> std::unique_ptr<const ops::StreamOperator> { return Make(p); }};
  return spec;
}

std::unique_ptr<const EcgMonitor> EcgMonitor::Make(const ops::Parameters& parameters) {
  auto o = EcgMonitorParameters().Read(kName, parameters);
  DeriveRhythmOptions(o.rhythm);
  return Make(o);
}

std::unique_ptr<const EcgMonitor> EcgMonitor::Make(const EcgMonitorOptions& options) {
  EcgMonitorParameters().Check(kName, options);
  // Rate-dependent checks at the highest supported rate (the corners are adapted to lower
  // rates in QrsOptionsAt).
  QrsOptions q = options.qrs;
  q.sample_rate_hz = kMaxRate;
  ValidateQrsOptions(q);
  ValidateBeatClassifierOptions(options.classifier);
  return std::unique_ptr<const EcgMonitor>(new EcgMonitor(options));
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

EcgMonitor::EcgMonitor(const EcgMonitorOptions& options)
    : options_(options),
      rhythm_(RhythmAnalyzer::Make(options.rhythm)),
      pulse_(PulseDetector::Make(options.pulse)) {}

std::unique_ptr<ops::OperatorState> EcgMonitor::MakeState() const {
  return std::unique_ptr<ops::OperatorState>(new EcgMonitorState(*this));
}

void EcgMonitor::Process(ops::OperatorState& state, ops::Signal signal, const ops::Chunk& chunk,
                         ops::Events& out) const {
  auto& s = Cast(state);
  if (const int k = PulseIndex(signal); k >= 0) {
    if (options_.verify_alarms) pulse_.Process(s.pulse_[k], chunk);
    return;
  }
  if (signal != ops::Signal::kEcg || chunk.values.empty()) return;
  if (s.primary_lead_ < 0) s.primary_lead_ = chunk.lead;
  if (chunk.lead != s.primary_lead_) {
    if (!options_.verify_alarms) return;
    auto it = std::find_if(s.others_.begin(), s.others_.end(),
                           [&](const auto& o) { return o.lead == chunk.lead; });
    if (it == s.others_.end()) {
      if (s.others_.size() >= kMaxOtherLeads) return;
      s.others_.push_back(
          {chunk.lead, std::unique_ptr<EcgMonitorState>(new EcgMonitorState(*this)), {}});
      it = s.others_.end() - 1;
    }
    s.lead_events_.clear();
    // The runtime reports gaps of the primary lead only (PatientAnalysis); another lead's own
    // holes are found here, by its chunks' times.
    if (it->state->qrs_ && chunk.first_sample_us > it->next_us + kLeadGapUs) {
      RestartLead(*it->state, it->next_us, chunk.first_sample_us, s.lead_events_);
    }
    it->next_us = std::max(it->next_us, chunk.end_us());
    ProcessLead(*it->state, chunk, s.lead_events_);
    // Only its beats are kept: an alarm another lead would raise on its own is not raised
    // (on MIT-BIH, VT from either lead raised false VT/VF from 1.3 to 8.9 per hour).
    for (const auto& e : s.lead_events_) {
      if (const auto* beat = std::get_if<ops::Beat>(&e)) it->beats.push_back(beat->time_us);
    }
    // Bounded by time and by count (times need not only grow).
    const ops::TimeUs keep_from = chunk.end_us() - ops::FromSeconds(PulseDetector::kKeepS);
    while (!it->beats.empty() &&
           (it->beats.front() < keep_from || it->beats.size() > kMaxLeadBeats)) {
      it->beats.pop_front();
    }
    return;
  }
  if (!options_.verify_alarms) {
    ProcessLead(s, chunk, out);
    return;
  }
  s.lead_events_.clear();
  ProcessLead(s, chunk, s.lead_events_);
  Verify(s, s.lead_events_, chunk.end_us(), out);
}

void EcgMonitor::ProcessLead(EcgMonitorState& s, const ops::Chunk& chunk, ops::Events& out) const {
  if (!(chunk.sample_rate_hz >= kMinRate && chunk.sample_rate_hz <= kMaxRate)) return;
  if (chunk.sample_rate_hz != s.sample_rate_hz_) {
    if (s.qrs_) FlushLead(s, out);  // a rate change restarts the lead: its episodes end here
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
  if (const int k = PulseIndex(signal); k >= 0) {
    pulse_.Restart(s.pulse_[k]);
    return;
  }
  if (signal != ops::Signal::kEcg || !s.qrs_) return;
  ops::Events primary;
  RestartLead(s, from_us, to_us, primary);
  Verify(s, primary, from_us, out);
}

void EcgMonitor::RestartLead(EcgMonitorState& s, ops::TimeUs from_us, ops::TimeUs to_us,
                             ops::Events& out) const {
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
  ops::Events primary;
  FlushLead(s, primary);
  // Held alarms whose close the end of the recording brings are dropped with it.
  Verify(s, primary, std::numeric_limits<ops::TimeUs>::min(), out);
}

void EcgMonitor::FlushLead(EcgMonitorState& s, ops::Events& out) const {
  s.detections_.clear();
  s.qrs_->Flush(s.detections_);
  s.Emit(s.detections_, out);
  s.classified_.clear();
  s.classifier_->Flush(s.classified_);
  s.EmitClassified(out);
  RunRhythm(s, ops::Chunk{0, s.sample_rate_hz_, {}}, std::numeric_limits<ops::TimeUs>::max(), out);
  rhythm_.Finish(*s.rhythm_, out);
}

void EcgMonitor::Verify(EcgMonitorState& s, ops::Events& primary, ops::TimeUs now_us,
                        ops::Events& out) const {
  const bool judge = now_us != std::numeric_limits<ops::TimeUs>::min();
  for (auto& event : primary) {
    auto* episode = std::get_if<ops::Episode>(&event);
    if (episode == nullptr || !Verified(episode->kind)) {
      out.push_back(std::move(event));
      continue;
    }
    auto held = std::find_if(s.held_.begin(), s.held_.end(),
                             [&](const auto& h) { return h.kind == episode->kind; });
    if (held != s.held_.end() && held->end_us != 0 &&
        episode->phase == ops::Episode::Phase::kOpened) {
      // A new run while the one before, ended, still waits for its verdict: that one is
      // judged now, once and for all.
      const ops::Episode ended = std::move(*held);
      s.held_.erase(held);
      Release(s, ended, now_us, judge, out);
      held = s.held_.end();
    }
    if (held != s.held_.end()) {
      // Never raised: its updates are not news, and its close ends the hold - except for a VT
      // run, often shorter than the other lead's lag, which is judged once that lead caught up.
      if (episode->phase == ops::Episode::Phase::kClosed) {
        if (judge && held->kind == ops::EpisodeKind::kVentricularTachycardia) {
          held->end_us = episode->end_us;
        } else {
          s.held_.erase(held);
        }
      }
      continue;
    }
    if (episode->phase == ops::Episode::Phase::kOpened && judge && options_.verify_alarms) {
      ops::Explanation why = episode->why;
      if (!Contradiction(s, *episode, now_us, why).empty()) {
        s.held_.push_back(std::move(*episode));
        continue;
      }
      episode->why = std::move(why);
    }
    Pass(s, std::move(*episode), out);
  }
  if (!judge) return;
  for (auto it = s.held_.begin(); it != s.held_.end();) {
    const ops::Episode h = *it;
    ops::Explanation why = h.why;
    if (Contradiction(s, h, now_us, why).empty() ||
        (h.end_us != 0 && now_us - h.end_us > ops::FromSeconds(kLeadWaitS))) {
      it = s.held_.erase(it);
      Release(s, h, now_us, judge, out);
    } else {
      ++it;
    }
  }
}

void EcgMonitor::Release(EcgMonitorState& s, const ops::Episode& held, ops::TimeUs now_us,
                         bool judge, ops::Events& out) const {
  ops::Explanation why = held.why;
  if (!judge || !Contradiction(s, held, now_us, why).empty()) return;  // never raised
  ops::Episode opened = held;
  opened.phase = ops::Episode::Phase::kOpened;
  opened.end_us = 0;
  opened.why = std::move(why);
  opened.why.note += (opened.why.note.empty() ? "" : "; ") +
                     std::string("raised once the other signals no longer contradicted it");
  Pass(s, opened, out);
  if (held.end_us != 0) {
    opened.phase = ops::Episode::Phase::kClosed;
    opened.end_us = held.end_us;
    Pass(s, std::move(opened), out);
  }
}

void EcgMonitor::Pass(EcgMonitorState& s, ops::Episode episode, ops::Events& out) const {
  // Only the phases of an episode whose opening went out: the alert stage would read a close
  // without an opening as an episode known only afterwards, and raise it.
  const uint8_t bit = static_cast<uint8_t>(1u << VerifiedIndex(episode.kind));
  switch (episode.phase) {
    case ops::Episode::Phase::kOpened:
      s.open_ |= bit;
      break;
    case ops::Episode::Phase::kUpdated:
      if ((s.open_ & bit) == 0) return;
      break;
    case ops::Episode::Phase::kClosed:
      if ((s.open_ & bit) == 0) return;
      s.open_ &= static_cast<uint8_t>(~bit);
      break;
  }
  out.emplace_back(std::move(episode));
}

std::string EcgMonitor::Contradiction(const EcgMonitorState& s, const ops::Episode& e,
                                      ops::TimeUs now_us, ops::Explanation& why) const {
  using K = ops::EpisodeKind;
  const double vt_rate = options_.rhythm.vt.min_rate_bpm;
  // Other leads lag the primary by up to a frame plus the beat emission delay; pulses by a
  // frame plus the slope sum window.
  ops::TimeUs lead_to = now_us - ops::FromSeconds(1.5);
  if (e.end_us != 0) lead_to = std::min(lead_to, e.end_us);  // a held run that has ended
  ops::TimeUs pulse_to = now_us - ops::FromSeconds(1.0);
  if (e.end_us != 0) pulse_to = std::min(pulse_to, e.end_us + ops::FromSeconds(0.3));
  const bool vt = e.kind == K::kVentricularTachycardia;
  // Asystole and VT are judged over the episode itself (a VT run is short: what came before
  // it says nothing of it); VF over at least its last 3 s.
  const ops::TimeUs from = e.kind == K::kAsystole ? e.start_us + ops::FromSeconds(0.3)
                           : vt                   ? e.start_us
                                : std::min(e.start_us, lead_to - ops::FromSeconds(3));
  std::string reason;
  for (const auto& other : s.others_) {
    if (!other.state->rhythm_ || !rhythm_.Usable(*other.state->rhythm_, from, lead_to)) continue;
    int count = 0;
    const double rate = RegularRate(other.beats, from, lead_to, count);
    why.measures.push_back(
        {fmt::format("lead_{}_beats", other.lead), static_cast<double>(count), ""});
    if (rate > 0) why.measures.push_back({fmt::format("lead_{}_rate", other.lead), rate, "bpm"});
    if (!reason.empty()) continue;
    if (e.kind == K::kAsystole && count >= 2) {
      reason = fmt::format("lead {} shows {} QRS complexes", other.lead, count);
    } else if (e.kind == K::kVentricularTachycardia && rate > 0 && rate < vt_rate) {
      reason = fmt::format("lead {} beats regularly at {:.0f} bpm", other.lead, rate);
    } else if (e.kind == K::kVentricularTachycardia && count < 3 &&
               now_us - e.start_us < ops::FromSeconds(kLeadWaitS)) {
      // The other lead's beats lag the primary's by up to a frame and a half: a young run
      // waits for them (on MIT-BIH false VT/VF 1.3 -> 1.0 per hour; CinC 2015 VT TP 23 -> 21
      // as runs in a record's last seconds end with the record, FP 31 -> 22).
      reason = fmt::format("waiting for lead {}", other.lead);
    } else if ((e.kind == K::kVentricularFibrillation || e.kind == K::kVentricularFlutter) &&
               rate >= 30 && rate <= 150) {
      reason = fmt::format("lead {} beats regularly at {:.0f} bpm", other.lead, rate);
    }
  }
  static constexpr const char* kPulseNames[2] = {"pleth", "abp"};
  for (int k = 0; k < 2; ++k) {
    const auto& p = s.pulse_[k];
    if (p.sample_rate_hz <= 0 || p.last_time_us < pulse_to) continue;  // no such signal now
    // The pulse lags the QRS by its transit time (0.1-0.4 s).
    const auto verdict = pulse_.Judge(p, vt ? from + ops::FromSeconds(0.3) : from, pulse_to);
    why.measures.push_back(
        {fmt::format("{}_pulses", kPulseNames[k]), static_cast<double>(verdict.pulses), ""});
    if (verdict.rate_bpm > 0) {
      why.measures.push_back(
          {fmt::format("{}_pulse_rate", kPulseNames[k]), verdict.rate_bpm, "bpm"});
    }
    why.measures.push_back(
        {fmt::format("{}_pulse_regular", kPulseNames[k]), verdict.good ? 1.0 : 0.0, ""});
    if (!reason.empty()) continue;
    if (vt) {
      // VT may keep a pulse, often with a deficit (fewer, weaker pulses than QRS complexes): a
      // pulse slower than the VT rate is evidence only when it goes on through the run as it
      // was before it, at the same rate and amplitude - what an ECG artefact leaves behind.
      // A run too young to hold `min_pulses` pulses is not held back to wait for them: on the
      // CinC 2015 records that wait (3.5 s) cost 10 of 27 true VT alarms for 17 of 46 false.
      const auto before = pulse_.Judge(p, e.start_us - ops::FromSeconds(10), e.start_us);
      if (before.good && verdict.good && verdict.rate_bpm < vt_rate &&
          std::fabs(verdict.rate_bpm - before.rate_bpm) <= 0.15 * before.rate_bpm &&
          verdict.amplitude >= 0.7 * before.amplitude) {
        reason = fmt::format("{} pulse unchanged through the run at {:.0f} bpm", kPulseNames[k],
                             verdict.rate_bpm);
      }
    } else if (verdict.good) {
      reason = fmt::format("regular {} pulse at {:.0f} bpm", kPulseNames[k], verdict.rate_bpm);
    }
  }
  return reason;
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
  SaveLead(w);
  w.Put<int32_t>(primary_lead_);
  w.Put<uint64_t>(others_.size());
  for (const auto& o : others_) {
    w.Put<int32_t>(o.lead);
    o.state->SaveLead(w);
    const std::vector<int64_t> beats(o.beats.begin(), o.beats.end());
    w.PutSpan<int64_t>(beats);
    w.Put<int64_t>(o.next_us);
  }
  for (const auto& p : pulse_) p.Save(w);
  w.Put<uint8_t>(open_);
  w.Put<uint64_t>(held_.size());
  for (const auto& h : held_) {
    w.Put<uint8_t>(static_cast<uint8_t>(h.kind));
    w.Put<int64_t>(h.start_us);
    w.Put<int64_t>(h.end_us);
    w.PutString(h.why.algorithm);
    w.PutString(h.why.version);
    w.PutString(h.why.rule);
  }
  return w.Take();
}

void EcgMonitorState::SaveLead(ops::SnapshotWriter& w) const {
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
}

void EcgMonitorState::Restore(std::string_view bytes) {
  ops::SnapshotReader r(bytes);
  // Version 5 (the release before) still restores: a single lead, no other signals yet, so a
  // rolling upgrade keeps every patient's ECG state.
  const uint32_t version = ops::ReadVersion(r, EcgMonitor::kName, kSnapshotVersion, 5);
  EcgMonitorState s(*op_);
  s.LoadLead(r);
  if (version == 5) {
    r.ExpectEnd();
    *this = std::move(s);
    return;
  }
  s.primary_lead_ = r.Get<int32_t>();
  const auto n = r.Get<uint64_t>();
  if (n > kMaxOtherLeads) throw ops::SnapshotError("ecg.arrhythmia: too many leads");
  for (uint64_t i = 0; i < n; ++i) {
    OtherLead o;
    o.lead = r.Get<int32_t>();
    o.state.reset(new EcgMonitorState(*op_));
    o.state->LoadLead(r);
    const auto beats = r.GetVector<int64_t>(kMaxLeadBeats);
    o.beats.assign(beats.begin(), beats.end());
    o.next_us = r.Get<int64_t>();
    s.others_.push_back(std::move(o));
  }
  for (auto& p : s.pulse_) op_->pulse().Load(p, r);
  s.open_ = r.Get<uint8_t>();
  if (s.open_ >= 16) throw ops::SnapshotError("ecg.arrhythmia: bad open alarms");
  const auto held = r.Get<uint64_t>();
  if (held > 4) throw ops::SnapshotError("ecg.arrhythmia: too many held alarms");
  for (uint64_t i = 0; i < held; ++i) {
    ops::Episode h;
    h.kind = static_cast<ops::EpisodeKind>(r.Get<uint8_t>());
    if (!Verified(h.kind)) throw ops::SnapshotError("ecg.arrhythmia: bad held alarm");
    h.start_us = r.Get<int64_t>();
    h.end_us = r.Get<int64_t>();
    h.why.algorithm = r.GetString();
    h.why.version = r.GetString();
    h.why.rule = r.GetString();
    s.held_.push_back(std::move(h));
  }
  r.ExpectEnd();
  *this = std::move(s);
}

void EcgMonitorState::LoadLead(ops::SnapshotReader& r) {
  EcgMonitorState& s = *this;  // a fresh state (see Restore)
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
  new_beats_.clear();
  new_atrial_.clear();
}

}  // namespace vigil::ecg
