#include "pipeline/analysis/patient_analysis.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <set>

#include "operators/core/snapshot.h"
#include "pipeline/analysis/aggregator.h"
#include "pipeline/analysis/alert_manager.h"
#include "pipeline/analysis/frame_decoder.h"

namespace vigil::analysis {
namespace {

constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kPartFormatVersion = 1;  // OperatorState.format_version
constexpr size_t kMaxSkippedRemembered = 256;
constexpr size_t kMaxPendingPerStream = 4096;  // bound on the reorder buffer, in frames
// ... and in samples (1 MiB of floats): hostile frames of 10^5 samples each would otherwise hold
// 4096 * 400 KB per stream, and the patient's snapshot could not be produced.
constexpr size_t kMaxPendingSamplesPerStream = size_t{1} << 18;
// Bounds on one patient's streams (device x kind x lead) and devices: a 12-lead ECG, a pulse
// oximeter and a ventilator with all their signals fit many times over.
constexpr size_t kMaxStreamsPerPatient = 64;
constexpr size_t kMaxDevicesPerPatient = 16;

struct PendingFrame {
  uint64_t sequence = 0;
  ops::TimeUs first_sample_us = 0;
  double sample_rate_hz = 0;
  std::vector<float> values;
  ops::TimeUs end_us() const {
    return ops::SampleTime(first_sample_us, sample_rate_hz, static_cast<int64_t>(values.size()));
  }
};

struct Stream {
  std::string device;
  ops::Signal signal = ops::Signal::kUnknown;
  int lead = 0;
  bool started = false;
  uint64_t last_sequence = 0;
  ops::TimeUs next_us = 0;                   // expected start of the next frame
  std::map<uint64_t, PendingFrame> pending;  // out-of-order frames waiting for a gap to fill
  size_t pending_samples = 0;                // sum of their sizes
  std::deque<uint64_t> skipped;              // sequences declared lost

  // End of the newest data received: processed, or waiting with the highest sequence number
  // (the newest in time as far as sequence numbers can tell without a scan).
  ops::TimeUs newest_received_us() const {
    return pending.empty() ? next_us : std::max(next_us, pending.rbegin()->second.end_us());
  }
};

bool PlausibleTime(ops::TimeUs t) {
  return t >= -ops::kMaxPlausibleTimeUs && t <= ops::kMaxPlausibleTimeUs;
}

struct Device {
  ops::TimeUs last_arrival_us = 0;
  ops::TimeUs last_sample_end_us = 0;
  bool offline = false;
  int primary_ecg_lead = -1;
};

std::string StreamKey(std::string_view device, ops::Signal signal, int lead) {
  // Built by hand: this runs for every frame, and fmt's format parsing showed in profiles.
  std::string key;
  key.reserve(device.size() + 8);
  key.append(device).append(1, '|').append(std::to_string(static_cast<int>(signal)));
  key.append(1, '|').append(std::to_string(lead));
  return key;
}

}  // namespace

struct PatientAnalysis::Impl {
  std::string patient_id;
  std::shared_ptr<const AnalysisPlan> plan;
  std::string time_zone;
  AlertManager alerts;
  Aggregator aggregates;
  std::map<std::string, Stream> streams;
  std::map<std::string, Device> devices;
  // Operator state per (operator name, device).
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ops::OperatorState>> states;
  ops::TimeUs watermark_us = 0;
  Counters counters;
  ops::Events scratch;
  std::string rejection;                       // why the last kRejected
  std::vector<std::string> restore_fallbacks;  // parts of the last Restore that started fresh

  Impl(std::string patient, std::shared_ptr<const AnalysisPlan> p)
      : patient_id(std::move(patient)),
        plan(std::move(p)),
        time_zone(plan->config().default_time_zone),
        alerts(patient_id, plan->config().alerts),
        aggregates(patient_id, time_zone, plan->config().minute_aggregates) {}

  ops::OperatorState& StateFor(const ops::StreamOperator& op, const std::string& device) {
    auto& slot = states[{std::string(op.name()), device}];
    if (!slot) slot = op.MakeState();
    return *slot;
  }

  static bool Consumes(const ops::StreamOperator& op, ops::Signal signal) {
    const auto inputs = op.inputs();
    return std::find(inputs.begin(), inputs.end(), signal) != inputs.end();
  }

  // Routes what operators emitted: alerts, aggregates and the raw events.
  void Dispatch(const std::string& device, Outputs& out) {
    for (auto& event : scratch) {
      aggregates.OnEvent(event);
      if (const auto* episode = std::get_if<ops::Episode>(&event)) {
        alerts.OnEpisode(*episode, device, out.alerts);
      }
      out.events.push_back(std::move(event));
    }
    scratch.clear();
  }

  void Advance(Outputs& out) {
    for (const auto& op : plan->operators()) {
      for (auto& [key, state] : states) {
        if (key.first != op->name()) continue;
        op->AdvanceTo(*state, watermark_us, scratch);
        Dispatch(key.second, out);
      }
    }
    alerts.AdvanceTo(watermark_us, out.alerts);
    aggregates.AdvanceTo(watermark_us, out.aggregates);
  }

  void Gap(Stream& s, ops::TimeUs from_us, ops::TimeUs to_us, Outputs& out) {
    ++counters.gaps;
    // A multi-lead ECG operator restarts on its primary lead's gaps; a secondary lead's chunks
    // carry their own times, and its beats are only evidence beside the primary's.
    const auto dev = devices.find(s.device);
    const bool secondary_lead = s.signal == ops::Signal::kEcg && dev != devices.end() &&
                                dev->second.primary_ecg_lead >= 0 &&
                                dev->second.primary_ecg_lead != s.lead;
    for (const auto& op : plan->operators()) {
      if (!Consumes(*op, s.signal) || secondary_lead) continue;
      op->OnGap(StateFor(*op, s.device), s.signal, from_us, to_us, scratch);
      Dispatch(s.device, out);
    }
    if (to_us - from_us >= ops::FromSeconds(plan->config().signal_lost_alert_s)) {
      ops::Episode lost;
      lost.kind = ops::EpisodeKind::kSignalLost;
      lost.phase = ops::Episode::Phase::kClosed;
      lost.start_us = from_us;
      lost.end_us = to_us;
      lost.why.algorithm = "runtime.gap";
      lost.why.version = "1.0.0";
      lost.why.rule = fmt::format("no {} samples for >= {} s", ops::SignalName(s.signal),
                                  plan->config().signal_lost_alert_s);
      lost.why.measures.push_back({"gap", ops::ToSeconds(to_us - from_us), "s"});
      scratch.push_back(lost);
      Dispatch(s.device, out);
    }
  }

  // Per-operator processing time of this call (Outputs::operator_ns, the service's
  // vigil_operator_seconds): one entry per operator, summed over the chunks of the call.
  static void AddOperatorTime(Outputs& out, std::string_view name,
                              std::chrono::steady_clock::duration spent) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(spent).count();
    for (auto& [op, total] : out.operator_ns) {
      if (op == name) {
        total += ns;
        return;
      }
    }
    out.operator_ns.emplace_back(name, ns);
  }

  void Process(Stream& s, ops::TimeUs first_us, double rate, std::span<const float> values,
               Outputs& out) {
    const ops::TimeUs gap_tolerance = ops::FromSeconds(plan->config().gap_tolerance_s);
    if (s.started && first_us > s.next_us + gap_tolerance) Gap(s, s.next_us, first_us, out);
    const ops::Chunk chunk{first_us, rate, values, s.lead};
    const ops::TimeUs end_us = chunk.end_us();
    s.started = true;
    s.next_us = std::max(s.next_us, end_us);

    auto& device = devices[s.device];
    device.last_sample_end_us = std::max(device.last_sample_end_us, end_us);
    if (s.signal == ops::Signal::kEcg) {
      // Every lead is analysed; the first one seen is the device's primary (monitoring) lead,
      // whose beats and coverage are reported, and the others verify its alarms.
      if (device.primary_ecg_lead < 0) device.primary_ecg_lead = s.lead;
      if (device.primary_ecg_lead != s.lead) {
        ++counters.secondary_lead_frames;
      } else {
        aggregates.OnEcgCoverage(first_us, end_us);
      }
    }
    for (const auto& op : plan->operators()) {
      if (!Consumes(*op, s.signal)) continue;
      const auto t0 = std::chrono::steady_clock::now();
      op->Process(StateFor(*op, s.device), s.signal, chunk, scratch);
      AddOperatorTime(out, op->name(), std::chrono::steady_clock::now() - t0);
      Dispatch(s.device, out);
    }
    watermark_us = std::max(watermark_us, end_us);
    Advance(out);
  }

  void ProcessPendingInOrder(Stream& s, Outputs& out) {
    while (!s.pending.empty() && s.pending.begin()->first == s.last_sequence + 1) {
      PendingFrame f = std::move(s.pending.begin()->second);
      s.pending.erase(s.pending.begin());
      s.pending_samples -= f.values.size();
      s.last_sequence = f.sequence;
      ++counters.reordered;
      Process(s, f.first_sample_us, f.sample_rate_hz, f.values, out);
    }
  }

  // Gives up waiting for missing sequences once the buffered frames reach past the tolerance
  // (or the buffer is full): the missing ones are declared lost and the rest is processed.
  void MaybeGiveUp(Stream& s, Outputs& out, bool force) {
    while (!s.pending.empty()) {
      const ops::TimeUs newest = s.pending.rbegin()->second.end_us();
      const bool too_long =
          newest - s.next_us > ops::FromSeconds(plan->config().reorder_tolerance_s);
      if (!force && !too_long && s.pending.size() < kMaxPendingPerStream &&
          s.pending_samples <= kMaxPendingSamplesPerStream) {
        return;
      }
      const uint64_t next = s.pending.begin()->first;
      // Only the newest kMaxSkippedRemembered are remembered, so only those are walked: a jump
      // of 2^62 sequence numbers costs what a jump of 256 does.
      const uint64_t missing = next - s.last_sequence - 1;
      const uint64_t from = next - std::min<uint64_t>(missing, kMaxSkippedRemembered);
      for (uint64_t q = from; q < next; ++q) {
        s.skipped.push_back(q);
        if (s.skipped.size() > kMaxSkippedRemembered) s.skipped.pop_front();
      }
      s.last_sequence = next - 1;
      ProcessPendingInOrder(s, out);
    }
  }

  // Why a frame or event spanning [first_us, end_us] cannot be placed on the patient's clock,
  // or empty when it can. `arrival_us` is the record's processing time (0: unknown).
  std::string ImplausibleTime(std::string_view field, ops::TimeUs first_us, ops::TimeUs end_us,
                              ops::TimeUs arrival_us) const {
    if (!PlausibleTime(first_us) || !PlausibleTime(end_us)) {
      return fmt::format("{} = {}: not a plausible device time (more than {:.0f} years from 1970)",
                         field, first_us, ops::ToSeconds(ops::kMaxPlausibleTimeUs) / 31'557'600);
    }
    // "Ahead" needs a clock the device does not set: the record's arrival time. Without one
    // (offline files) a device's own data may leap forward legitimately - a gateway uploading
    // 30 days of session history before today's frames - and the same data must give the same
    // result offline and through Kafka. An implausible arrival time is no reference either.
    if (arrival_us <= 0 || !PlausibleTime(arrival_us)) return {};
    const ops::TimeUs reference = std::max(watermark_us, arrival_us);
    const double ahead_s = ops::ToSeconds(end_us - reference);
    if (ahead_s > plan->config().max_time_ahead_s) {
      return fmt::format(
          "{} = {}: {:.0f} s ahead of the patient's clock {} (newest of the data processed and "
          "the arrival time), more than analysis.max_time_ahead_s = {}",
          field, first_us, ahead_s, reference, plan->config().max_time_ahead_s);
    }
    return {};
  }

  // A sequence number at or below the last processed one on a frame that starts after all data
  // received from the stream: not a duplicate (a duplicate repeats old data) but a device that
  // restarted its count, e.g. after a reboot. Without this every later frame of the device would
  // be refused as a duplicate and the patient would go unmonitored.
  // Why data of `device` (on a stream not seen yet when `new_stream`) would exceed the
  // patient's bounds ("" when it would not): a record with ever new device ids must not grow
  // one patient's state without limit.
  std::string Unbounded(std::string_view device, bool new_stream) const {
    if (new_stream && streams.size() >= kMaxStreamsPerPatient) {
      return fmt::format("device_id = {}: the patient has {} streams already, the most kept",
                         device, streams.size());
    }
    if (!devices.count(std::string(device)) && devices.size() >= kMaxDevicesPerPatient) {
      return fmt::format("device_id = {}: the patient has {} devices already, the most kept",
                         device, devices.size());
    }
    return {};
  }

  static bool IsRestart(const Stream& s, const FrameView& frame) {
    return frame.sequence <= s.last_sequence && !frame.values.empty() &&
           frame.first_sample_us >= s.newest_received_us();
  }

  // Continues the stream at `frame`'s sequence number: what was waiting for the old numbers is
  // processed first (its gaps declared), and the old numbers are forgotten.
  void Resynchronise(Stream& s, const FrameView& frame, Outputs& out) {
    MaybeGiveUp(s, out, true);
    ++counters.sequence_restarts;
    out.events.push_back(ops::Measurement{"sequence_restart", static_cast<double>(s.last_sequence),
                                          frame.first_sample_us});
    s.skipped.clear();
    s.last_sequence = frame.sequence - 1;  // sequence 0 (unsequenced) never gets here
  }

  void CloseOffline(const std::string& id, Device& d, ops::TimeUs resumed_at_us, Outputs& out) {
    if (!d.offline) return;
    d.offline = false;
    ops::Episode back;
    back.kind = ops::EpisodeKind::kDeviceOffline;
    back.phase = ops::Episode::Phase::kClosed;
    back.start_us = d.last_sample_end_us;
    back.end_us = std::max(resumed_at_us, d.last_sample_end_us);
    alerts.OnEpisode(back, id, out.alerts);
    out.events.push_back(back);
  }
};

PatientAnalysis::PatientAnalysis(std::string patient_id, std::shared_ptr<const AnalysisPlan> plan)
    : impl_(std::make_unique<Impl>(std::move(patient_id), std::move(plan))) {}
PatientAnalysis::~PatientAnalysis() = default;
PatientAnalysis::PatientAnalysis(PatientAnalysis&&) noexcept = default;
PatientAnalysis& PatientAnalysis::operator=(PatientAnalysis&&) noexcept = default;

const std::string& PatientAnalysis::patient_id() const {
  return impl_->patient_id;
}
const std::string& PatientAnalysis::last_rejection() const {
  return impl_->rejection;
}
ops::TimeUs PatientAnalysis::watermark_us() const {
  return impl_->watermark_us;
}

PatientAnalysis::Counters PatientAnalysis::counters() const {
  Counters c = impl_->counters;
  c.suppressed_by_technical = impl_->alerts.suppressed_by_technical();
  c.suppressed_by_rate_limit = impl_->alerts.suppressed_by_rate_limit();
  return c;
}

FrameOutcome PatientAnalysis::OnFrame(const FrameView& frame, Outputs& out) {
  Impl& im = *impl_;
  // Checked before any state changes, so that a rejected frame leaves no trace but the count.
  const ops::TimeUs end_us = ops::SampleTime(frame.first_sample_us, frame.sample_rate_hz,
                                             static_cast<int64_t>(frame.values.size()));
  if (auto why = im.ImplausibleTime("first_sample_time_us", frame.first_sample_us, end_us,
                                    frame.arrival_us);
      !why.empty()) {
    im.rejection = std::move(why);
    ++im.counters.rejected_times;
    return FrameOutcome::kRejected;
  }
  const std::string key = StreamKey(frame.device_id, frame.signal, frame.lead);
  if (!im.streams.count(key)) {
    if (auto why = im.Unbounded(frame.device_id, true); !why.empty()) {
      im.rejection = std::move(why);
      return FrameOutcome::kRejected;
    }
  }
  auto [it, inserted] = im.streams.try_emplace(key);
  Stream& s = it->second;
  if (inserted) {
    s.device = std::string(frame.device_id);
    s.signal = frame.signal;
    s.lead = frame.lead;
  }
  Device& device = im.devices[s.device];
  if (frame.arrival_us > 0 && PlausibleTime(frame.arrival_us)) {
    device.last_arrival_us = std::max(device.last_arrival_us, frame.arrival_us);
  }
  im.CloseOffline(s.device, device, frame.first_sample_us, out);

  if (frame.sequence == 0) {
    // Unsequenced source: arrival order, and anything older than what was processed is late.
    if (s.started &&
        frame.first_sample_us < s.next_us - ops::FromSeconds(im.plan->config().gap_tolerance_s)) {
      return FrameOutcome::kTooLate;
    }
    im.Process(s, frame.first_sample_us, frame.sample_rate_hz, frame.values, out);
    return FrameOutcome::kProcessed;
  }
  if (!s.started && s.pending.empty()) {
    s.last_sequence = frame.sequence;
    im.Process(s, frame.first_sample_us, frame.sample_rate_hz, frame.values, out);
    return FrameOutcome::kProcessed;
  }
  if (Impl::IsRestart(s, frame)) im.Resynchronise(s, frame, out);
  if (frame.sequence <= s.last_sequence) {
    const bool lost =
        std::find(s.skipped.begin(), s.skipped.end(), frame.sequence) != s.skipped.end();
    return lost ? FrameOutcome::kTooLate : FrameOutcome::kDuplicate;
  }
  if (frame.sequence == s.last_sequence + 1) {
    s.last_sequence = frame.sequence;
    im.Process(s, frame.first_sample_us, frame.sample_rate_hz, frame.values, out);
    im.ProcessPendingInOrder(s, out);
    return FrameOutcome::kProcessed;
  }
  if (s.pending.count(frame.sequence)) return FrameOutcome::kDuplicate;
  PendingFrame pf;
  pf.sequence = frame.sequence;
  pf.first_sample_us = frame.first_sample_us;
  pf.sample_rate_hz = frame.sample_rate_hz;
  pf.values.assign(frame.values.begin(), frame.values.end());
  s.pending_samples += pf.values.size();
  s.pending.emplace(frame.sequence, std::move(pf));
  im.MaybeGiveUp(s, out, false);
  return FrameOutcome::kProcessed;
}

FrameOutcome PatientAnalysis::OnDeviceEvent(std::string_view device_id,
                                            const ops::DeviceEventView& event, Outputs& out) {
  Impl& im = *impl_;
  const std::string device(device_id);
  if (auto why = im.Unbounded(device, false); !why.empty()) {
    im.rejection = std::move(why);
    return FrameOutcome::kRejected;
  }
  im.devices.try_emplace(device);  // its operator states are kept per device
  // Device events carry no arrival time of their own; the device's last one stands in for it.
  const auto known = im.devices.find(device);
  if (auto why = im.ImplausibleTime("time_us", event.time_us, event.time_us,
                                    known == im.devices.end() ? 0 : known->second.last_arrival_us);
      !why.empty()) {
    im.rejection = std::move(why);
    ++im.counters.rejected_times;
    return FrameOutcome::kRejected;
  }
  for (const auto& op : im.plan->operators()) {
    op->OnDeviceEvent(im.StateFor(*op, device), event, im.scratch);
    im.Dispatch(device, out);
  }
  if (event.time_us > im.watermark_us) {
    im.watermark_us = event.time_us;
    im.Advance(out);
  }
  return FrameOutcome::kProcessed;
}

void PatientAnalysis::CheckDevicesOnline(ops::TimeUs processing_now_us, double offline_after_s,
                                         Outputs& out) {
  Impl& im = *impl_;
  // A hostile record timestamp must not make the subtraction below overflow.
  if (!PlausibleTime(processing_now_us)) return;
  for (auto& [id, d] : im.devices) {
    if (d.offline || d.last_arrival_us == 0) continue;
    if (processing_now_us - d.last_arrival_us < ops::FromSeconds(offline_after_s)) continue;
    d.offline = true;
    ops::Episode off;
    off.kind = ops::EpisodeKind::kDeviceOffline;
    off.phase = ops::Episode::Phase::kOpened;
    off.start_us = d.last_sample_end_us;
    off.why.algorithm = "runtime.device_offline";
    off.why.version = "1.0.0";
    off.why.rule = fmt::format("no data from the device for >= {} s", offline_after_s);
    off.why.measures.push_back(
        {"silent_for", ops::ToSeconds(processing_now_us - d.last_arrival_us), "s"});
    im.alerts.OnEpisode(off, id, out.alerts);
    out.events.push_back(off);
  }
}

void PatientAnalysis::Finish(Outputs& out) {
  Impl& im = *impl_;
  for (auto& [key, s] : im.streams) im.MaybeGiveUp(s, out, true);
  for (const auto& op : im.plan->operators()) {
    for (auto& [key, state] : im.states) {
      if (key.first != op->name()) continue;
      op->Finish(*state, im.scratch);
      im.Dispatch(key.second, out);
    }
  }
  im.alerts.AdvanceTo(im.watermark_us, out.alerts);
  im.alerts.Finish(im.watermark_us, out.alerts);
  im.aggregates.Finish(out.aggregates);
}

void PatientAnalysis::SetPlan(std::shared_ptr<const AnalysisPlan> plan, std::string time_zone) {
  Impl& im = *impl_;
  // A state may hold on to the operator that made it (its options). Where the new plan rebuilt
  // an operator (new per-patient parameters, zone), its states move to the new one through
  // their snapshot: the old operator may go with the old plan, and the new parameters reach
  // the running state. A state the new operator cannot read starts afresh.
  auto find = [](const AnalysisPlan& p, const std::string& name) -> const ops::StreamOperator* {
    for (const auto& op : p.operators()) {
      if (op->name() == name) return op.get();
    }
    return nullptr;
  };
  for (auto& [key, state] : im.states) {
    const ops::StreamOperator* before = find(*im.plan, key.first);
    const ops::StreamOperator* after = find(*plan, key.first);
    if (after == nullptr || after == before) continue;
    auto moved = after->MakeState();
    try {
      moved->Restore(state->Snapshot());
    } catch (const std::exception&) {
      moved = after->MakeState();
    }
    state = std::move(moved);
  }
  im.plan = std::move(plan);
  im.time_zone = time_zone.empty() ? im.plan->config().default_time_zone : std::move(time_zone);
  im.alerts.SetPolicy(im.plan->config().alerts);
  im.aggregates.SetTimeZone(im.time_zone);
}

v1::PatientStateSnapshot PatientAnalysis::Snapshot() const {
  const Impl& im = *impl_;
  v1::PatientStateSnapshot snap;
  snap.set_patient_id(im.patient_id);
  snap.set_format_version(kFormatVersion);
  snap.set_watermark_us(im.watermark_us);
  snap.set_snapshot_wall_time_us(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  for (const auto& [key, state] : im.states) {
    auto* os = snap.add_operators();
    os->set_operator_name(key.first);
    os->set_stream(key.second);
    os->set_format_version(kPartFormatVersion);
    os->set_state(state->Snapshot());
  }
  auto add_blob = [&](const char* name, std::string bytes) {
    auto* os = snap.add_operators();
    os->set_operator_name(name);
    os->set_format_version(kPartFormatVersion);
    os->set_state(std::move(bytes));
  };
  add_blob("_alert_manager", im.alerts.Snapshot());
  add_blob("_aggregator", im.aggregates.Snapshot());

  ops::SnapshotWriter w;
  w.PutString(im.time_zone);
  w.Put<uint64_t>(im.streams.size());
  for (const auto& [key, s] : im.streams) {
    w.PutString(s.device);
    w.Put<uint8_t>(static_cast<uint8_t>(s.signal));
    w.Put<int32_t>(s.lead);
    w.Put<uint8_t>(s.started);
    w.Put<uint64_t>(s.last_sequence);
    w.Put<int64_t>(s.next_us);
    w.Put<uint64_t>(s.pending.size());
    for (const auto& [seq, f] : s.pending) {
      w.Put<uint64_t>(f.sequence);
      w.Put<int64_t>(f.first_sample_us);
      w.Put<double>(f.sample_rate_hz);
      w.PutSpan<float>(f.values);
    }
    w.PutSpan<uint64_t>(std::vector<uint64_t>(s.skipped.begin(), s.skipped.end()));
    auto* pos = snap.add_streams();
    pos->set_stream(key);
    pos->set_last_sequence(s.last_sequence);
    pos->set_last_sample_end_us(s.next_us);
  }
  w.Put<uint64_t>(im.devices.size());
  for (const auto& [id, d] : im.devices) {
    w.PutString(id);
    w.Put<int64_t>(d.last_arrival_us);
    w.Put<int64_t>(d.last_sample_end_us);
    w.Put<uint8_t>(d.offline);
    w.Put<int32_t>(d.primary_ecg_lead);
  }
  add_blob("_streams", w.Take());
  return snap;
}

void PatientAnalysis::Restore(const v1::PatientStateSnapshot& snap) {
  // One version step either way (an upgrade, or the rollback after it) restores part by part;
  // beyond that the format is not known at all.
  if (snap.format_version() == 0 || snap.format_version() + 1 < kFormatVersion ||
      snap.format_version() > kFormatVersion + 1) {
    throw ops::SnapshotError(fmt::format("patient snapshot format {} (this release reads {} to {})",
                                         snap.format_version(), kFormatVersion - 1,
                                         kFormatVersion + 1));
  }
  // Build everything aside; swap in only when all of it is read. A part that cannot be read (a
  // newer operator format after a rollback, say) starts fresh alone: the alert manager's open
  // alerts, the therapy history and the other operators are kept.
  Impl fresh(snap.patient_id().empty() ? impl_->patient_id : snap.patient_id(), impl_->plan);
  fresh.watermark_us = snap.watermark_us();
  for (const auto& os : snap.operators()) {
    try {
      RestorePart(fresh, os);
    } catch (const std::exception& e) {
      Impl blank(fresh.patient_id, fresh.plan);
      if (os.operator_name() == "_alert_manager") {
        fresh.alerts = std::move(blank.alerts);
      } else if (os.operator_name() == "_aggregator") {
        fresh.aggregates = std::move(blank.aggregates);
      } else if (os.operator_name() == "_streams") {
        fresh.time_zone = blank.time_zone;
        fresh.streams.clear();
        fresh.devices.clear();
      } else {
        fresh.states.erase({os.operator_name(), os.stream()});
      }
      fresh.restore_fallbacks.push_back(fmt::format(
          "{}{}{}: {}", os.operator_name(), os.stream().empty() ? "" : "/", os.stream(), e.what()));
    }
  }
  fresh.aggregates.SetTimeZone(fresh.time_zone);
  *impl_ = std::move(fresh);
}

const std::vector<std::string>& PatientAnalysis::restore_fallbacks() const {
  return impl_->restore_fallbacks;
}

void PatientAnalysis::RestorePart(Impl& fresh, const v1::OperatorState& os) {
  // The part's own envelope version (each operator versions its state bytes inside them too):
  // a newer one is not guessed at.
  if (os.format_version() > kPartFormatVersion) {
    throw ops::SnapshotError(fmt::format("part format {} is newer than this release's {}",
                                         os.format_version(), kPartFormatVersion));
  }
  {
    if (os.operator_name() == "_alert_manager") {
      fresh.alerts.Restore(os.state());
    } else if (os.operator_name() == "_aggregator") {
      fresh.aggregates.Restore(os.state());
    } else if (os.operator_name() == "_streams") {
      ops::SnapshotReader r(os.state());
      fresh.time_zone = r.GetString();
      // Only a zone the service accepted can have been saved: any other (a corrupt or forged
      // snapshot) threw at the first therapy-day boundary, in the middle of processing
      // (fuzz_snapshot). Refused here, the part restarts fresh with the default zone.
      try {
        date::locate_zone(fresh.time_zone);
      } catch (const std::exception&) {
        throw ops::SnapshotError(fmt::format("unknown time zone '{}'", fresh.time_zone));
      }
      const auto ns = r.Get<uint64_t>();
      for (uint64_t i = 0; i < ns; ++i) {
        Stream s;
        s.device = r.GetString();
        s.signal = static_cast<ops::Signal>(r.Get<uint8_t>());
        s.lead = r.Get<int32_t>();
        s.started = r.Get<uint8_t>() != 0;
        s.last_sequence = r.Get<uint64_t>();
        s.next_us = r.Get<int64_t>();
        const auto np = r.Get<uint64_t>();
        for (uint64_t j = 0; j < np; ++j) {
          PendingFrame f;
          f.sequence = r.Get<uint64_t>();
          f.first_sample_us = r.Get<int64_t>();
          f.sample_rate_hz = r.Get<double>();
          f.values = r.GetVector<float>();
          // A pending frame passed DecodeFrame's rate limits and OnFrame's time check when it
          // arrived; one that cannot have (a rate of 1e-246 Hz overflowed an operator's sample
          // period when the frame was processed after the restore) is a corrupt snapshot.
          const DecodeLimits limits;
          if (!(f.sample_rate_hz >= limits.min_sample_rate_hz &&
                f.sample_rate_hz <= limits.max_sample_rate_hz) ||
              !PlausibleTime(f.first_sample_us) ||
              !PlausibleTime(ops::SampleTime(f.first_sample_us, f.sample_rate_hz,
                                             static_cast<int64_t>(f.values.size())))) {
            throw ops::SnapshotError(
                fmt::format("patient snapshot: pending frame {}: rate {} Hz, first sample at {} us",
                            f.sequence, f.sample_rate_hz, f.first_sample_us));
          }
          s.pending_samples += f.values.size();
          s.pending.emplace(f.sequence, std::move(f));
        }
        const auto skipped = r.GetVector<uint64_t>();
        s.skipped.assign(skipped.begin(), skipped.end());
        const std::string key = StreamKey(s.device, s.signal, s.lead);
        fresh.streams.emplace(key, std::move(s));
      }
      const auto nd = r.Get<uint64_t>();
      for (uint64_t i = 0; i < nd; ++i) {
        const std::string id = r.GetString();
        Device d;
        d.last_arrival_us = r.Get<int64_t>();
        d.last_sample_end_us = r.Get<int64_t>();
        d.offline = r.Get<uint8_t>() != 0;
        d.primary_ecg_lead = r.Get<int32_t>();
        fresh.devices.emplace(id, d);
      }
      r.ExpectEnd();
    } else {
      const ops::StreamOperator* op = nullptr;
      for (const auto& candidate : fresh.plan->operators()) {
        if (candidate->name() == os.operator_name()) op = candidate.get();
      }
      if (op == nullptr) return;  // operator no longer configured: its state is dropped
      auto state = op->MakeState();
      state->Restore(os.state());
      fresh.states[{os.operator_name(), os.stream()}] = std::move(state);
    }
  }
}

}  // namespace vigil::analysis
