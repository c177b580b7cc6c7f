// INTERIM stand-in for pipeline/analysis/patient_analysis.cpp, which the lead is writing on
// main. CMake compiles this file only while that one does not exist, so the service, its tests
// and its benchmark have something deterministic and stateful to drive: sequence bookkeeping
// (duplicates, too-late frames, gaps as SIGNAL_LOST alerts), a watermark, minute aggregates of
// ECG coverage, device-offline checks and a snapshot of all of it. No signal processing.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "operators/core/options.h"
#include "operators/core/snapshot.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/analysis/patient_analysis.h"

namespace vigil::analysis {
namespace {

constexpr ops::TimeUs kMinute = 60 * ops::kMicrosPerSecond;
constexpr uint32_t kFormat = 1;

std::string AlertId(std::string_view patient, int condition, ops::TimeUs onset,
                    std::string_view stream) {
  // FNV-1a: stable across processes and machines (std::hash is not guaranteed to be).
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  mix(patient);
  mix(std::to_string(condition));
  mix(std::to_string(onset));
  mix(stream);
  return fmt::format("{:016x}", h);
}

}  // namespace

std::shared_ptr<const AnalysisPlan> AnalysisPlan::Make(AnalysisConfig config) {
  auto plan = std::make_shared<AnalysisPlan>();
  for (const auto& op : config.operators) {
    const auto* entry = FindOperator(op.name);
    if (!entry) throw std::invalid_argument("unknown operator " + op.name);
    plan->operators_.push_back(entry->make(op.parameters));
  }
  plan->config_ = std::move(config);
  return plan;
}

std::shared_ptr<const AnalysisPlan> AnalysisPlan::WithOverrides(
    const std::map<std::string, double>& overrides) const {
  AnalysisConfig config = config_;
  for (const auto& [key, value] : overrides) {
    auto it = std::find_if(config.operators.begin(), config.operators.end(), [&](const auto& op) {
      return key.rfind(op.name + ".", 0) == 0;
    });
    if (it == config.operators.end()) {
      throw ops::OptionError(key, fmt::format("{}", value), "no enabled operator has this key");
    }
    it->parameters[key.substr(it->name.size() + 1)] = value;
  }
  return Make(std::move(config));
}

struct PatientAnalysis::Impl {
  struct Stream {
    uint64_t last_sequence = 0;
    ops::TimeUs last_end_us = 0;
  };
  std::string patient;
  std::shared_ptr<const AnalysisPlan> plan;
  std::string time_zone;
  std::map<std::string, Stream> streams;
  ops::TimeUs watermark = 0;
  ops::TimeUs minute_start = 0;  // 0 = no open minute
  double ecg_seconds = 0;
  uint32_t frames = 0;
  std::map<std::string, ops::TimeUs> last_heard;  // device -> processing time
  std::set<std::string> heard_since_check;
  std::map<std::string, ops::TimeUs> offline;     // device -> onset (processing time)

  v1::Alert MakeAlert(v1::Condition condition, v1::AlertState state, ops::TimeUs onset,
                      ops::TimeUs end, std::string_view stream) const {
    v1::Alert a;
    a.set_alert_id(AlertId(patient, condition, onset, stream));
    a.set_patient_id(patient);
    a.set_condition(condition);
    a.set_priority(v1::PRIORITY_LOW);
    a.set_state(state);
    a.set_technical(true);
    a.set_onset_time_us(onset);
    a.set_end_time_us(end);
    a.set_event_time_us(end ? end : onset);
    a.set_revision(state == v1::ALERT_STATE_RAISED ? 0 : 1);
    a.set_condition_ended(end != 0);
    a.mutable_evidence()->set_algorithm("interim.sequence");
    a.mutable_evidence()->set_algorithm_version("0.0.1");
    a.set_summary(fmt::format("{} on {}", v1::Condition_Name(condition), stream));
    return a;
  }

  void CloseMinute(Outputs& out) {
    if (minute_start == 0) return;
    if (plan->config().minute_aggregates) {
      v1::Aggregate& g = out.aggregates.emplace_back();
      g.set_patient_id(patient);
      g.set_window(v1::WINDOW_KIND_MINUTE);
      g.set_window_start_us(minute_start);
      g.set_window_end_us(minute_start + kMinute);
      g.set_time_zone(time_zone);
      if (ecg_seconds > 0) g.mutable_cardiac()->set_ecg_coverage(std::min(1.0, ecg_seconds / 60));
    }
    minute_start = 0;
    ecg_seconds = 0;
    frames = 0;
  }
};

PatientAnalysis::PatientAnalysis(std::string patient_id, std::shared_ptr<const AnalysisPlan> plan)
    : impl_(std::make_unique<Impl>()) {
  impl_->patient = std::move(patient_id);
  impl_->time_zone = plan->config().default_time_zone;
  impl_->plan = std::move(plan);
}
PatientAnalysis::~PatientAnalysis() = default;
PatientAnalysis::PatientAnalysis(PatientAnalysis&&) noexcept = default;
PatientAnalysis& PatientAnalysis::operator=(PatientAnalysis&&) noexcept = default;

const std::string& PatientAnalysis::patient_id() const { return impl_->patient; }

FrameOutcome PatientAnalysis::OnFrame(const FrameView& frame, Outputs& out) {
  auto& s = *impl_;
  const std::string key = fmt::format("{}/{}/{}", frame.device_id, ops::SignalName(frame.signal),
                                      frame.lead);
  const ops::TimeUs end = ops::SampleTime(frame.first_sample_us, frame.sample_rate_hz,
                                          static_cast<int64_t>(frame.values.size()));
  s.heard_since_check.insert(std::string(frame.device_id));
  auto it = s.streams.find(key);
  if (it != s.streams.end() && frame.sequence <= it->second.last_sequence) {
    return FrameOutcome::kDuplicate;
  }
  if (end < s.watermark - ops::FromSeconds(s.plan->config().reorder_tolerance_s)) {
    return FrameOutcome::kTooLate;
  }
  if (it != s.streams.end() && frame.sequence > it->second.last_sequence + 1) {
    const ops::TimeUs from = it->second.last_end_us;
    out.alerts.push_back(s.MakeAlert(v1::CONDITION_SIGNAL_LOST, v1::ALERT_STATE_RAISED, from, 0, key));
    out.alerts.push_back(
        s.MakeAlert(v1::CONDITION_SIGNAL_LOST, v1::ALERT_STATE_CLEARED, from, frame.first_sample_us, key));
  }
  s.streams[key] = {frame.sequence, end};
  const ops::TimeUs minute = frame.first_sample_us - frame.first_sample_us % kMinute;
  if (s.minute_start != 0 && minute > s.minute_start) s.CloseMinute(out);
  if (s.minute_start == 0) s.minute_start = minute;
  if (frame.signal == ops::Signal::kEcg) {
    s.ecg_seconds += static_cast<double>(frame.values.size()) / frame.sample_rate_hz;
  }
  ++s.frames;
  s.watermark = std::max(s.watermark, end);
  return FrameOutcome::kProcessed;
}

void PatientAnalysis::OnDeviceEvent(std::string_view device_id, const ops::DeviceEventView&,
                                    Outputs&) {
  impl_->heard_since_check.insert(std::string(device_id));
}

void PatientAnalysis::CheckDevicesOnline(ops::TimeUs now_us, double offline_after_s, Outputs& out) {
  auto& s = *impl_;
  for (const auto& device : s.heard_since_check) {
    s.last_heard[device] = now_us;
    if (auto it = s.offline.find(device); it != s.offline.end()) {
      out.alerts.push_back(
          s.MakeAlert(v1::CONDITION_DEVICE_OFFLINE, v1::ALERT_STATE_CLEARED, it->second, now_us, device));
      s.offline.erase(it);
    }
  }
  s.heard_since_check.clear();
  for (const auto& [device, heard] : s.last_heard) {
    if (!s.offline.count(device) && now_us - heard > ops::FromSeconds(offline_after_s)) {
      s.offline[device] = now_us;
      out.alerts.push_back(
          s.MakeAlert(v1::CONDITION_DEVICE_OFFLINE, v1::ALERT_STATE_RAISED, now_us, 0, device));
    }
  }
}

void PatientAnalysis::Finish(Outputs& out) { impl_->CloseMinute(out); }

void PatientAnalysis::SetPlan(std::shared_ptr<const AnalysisPlan> plan, std::string time_zone) {
  impl_->plan = std::move(plan);
  if (!time_zone.empty()) impl_->time_zone = std::move(time_zone);
}

ops::TimeUs PatientAnalysis::watermark_us() const { return impl_->watermark; }

v1::PatientStateSnapshot PatientAnalysis::Snapshot() const {
  const auto& s = *impl_;
  v1::PatientStateSnapshot snap;
  snap.set_patient_id(s.patient);
  snap.set_format_version(kFormat);
  snap.set_watermark_us(s.watermark);
  for (const auto& [key, stream] : s.streams) {
    auto* p = snap.add_streams();
    p->set_stream(key);
    p->set_last_sequence(stream.last_sequence);
    p->set_last_sample_end_us(stream.last_end_us);
  }
  ops::SnapshotWriter w;
  w.PutString(s.time_zone);
  w.Put<int64_t>(s.minute_start);
  w.Put<double>(s.ecg_seconds);
  w.Put<uint32_t>(s.frames);
  auto put_map = [&](const std::map<std::string, ops::TimeUs>& m) {
    w.Put<uint64_t>(m.size());
    for (const auto& [k, v] : m) {
      w.PutString(k);
      w.Put<int64_t>(v);
    }
  };
  put_map(s.last_heard);
  put_map(s.offline);
  w.Put<uint64_t>(s.heard_since_check.size());
  for (const auto& d : s.heard_since_check) w.PutString(d);
  auto* op = snap.add_operators();
  op->set_operator_name("interim");
  op->set_format_version(kFormat);
  op->set_state(w.Take());
  return snap;
}

void PatientAnalysis::Restore(const v1::PatientStateSnapshot& snap) {
  if (snap.format_version() != kFormat || snap.operators_size() != 1 ||
      snap.operators(0).operator_name() != "interim") {
    throw ops::SnapshotError("interim analysis: not an interim snapshot");
  }
  Impl s;
  s.patient = impl_->patient;
  s.plan = impl_->plan;
  s.watermark = snap.watermark_us();
  for (const auto& p : snap.streams()) s.streams[p.stream()] = {p.last_sequence(), p.last_sample_end_us()};
  ops::SnapshotReader r(snap.operators(0).state());
  s.time_zone = r.GetString();
  s.minute_start = r.Get<int64_t>();
  s.ecg_seconds = r.Get<double>();
  s.frames = r.Get<uint32_t>();
  auto get_map = [&](std::map<std::string, ops::TimeUs>& m) {
    for (auto n = r.Get<uint64_t>(); n > 0; --n) {
      std::string k = r.GetString();
      m[k] = r.Get<int64_t>();
    }
  };
  get_map(s.last_heard);
  get_map(s.offline);
  for (auto n = r.Get<uint64_t>(); n > 0; --n) s.heard_since_check.insert(r.GetString());
  r.ExpectEnd();
  *impl_ = std::move(s);
}

}  // namespace vigil::analysis
