#include "operators/respiration/respiratory_events.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "operators/core/options.h"
#include "operators/core/parameters.h"

namespace vigil::ops {
namespace {

constexpr uint32_t kSnapshotVersion = 2;
constexpr double kBlockS = 0.2;
constexpr int kMaxWindowBlocks = 64;
constexpr TimeUs kSpo2KeepUs = 300 * kMicrosPerSecond;
constexpr TimeUs kLeakKeepUs = 600 * kMicrosPerSecond;

struct PendingHypopnea {
  TimeUs start_us = 0, end_us = 0;
  double drop = 0;  // fraction of baseline amplitude lost at the deepest point
};

// A closed candidate that qualified, waiting (when the patient's device sends leak) until the
// leak signal has covered its time: flow and leak arrive as separate frames, in any order.
struct HeldEvent {
  bool apnea = false, aasm = false;
  TimeUs start_us = 0, end_us = 0;
  double drop = 0;  // fraction of the baseline lost at the deepest point
};

struct EventState final : OperatorState {
  // flow baseline and block accumulation
  double flow_baseline = 0;
  bool flow_baseline_ready = false;
  int block_fill = 0;
  double block_max = 0;
  double block_sum = 0;
  TimeUs block_start_us = 0;
  TimeUs next_expected_us = 0;
  // ring of the last blocks: maximum and mean |flow - mean|, start time
  std::array<double, kMaxWindowBlocks> ring_max{};
  std::array<double, kMaxWindowBlocks> ring_sum{};
  std::array<TimeUs, kMaxWindowBlocks> ring_time{};
  int64_t blocks = 0;                  // since the last discontinuity
  double vent_sum = 0, apnea_sum = 0;  // running sums of ring_sum over the two windows
  double amplitude_baseline = 0;
  double ventilation_baseline = 0;
  // per-second histories for the baselines: amplitude outside candidates (first half) and
  // ventilation throughout (second half), `baseline_window_s` values each
  std::vector<float> history;
  int64_t amplitude_pushes = 0, ventilation_pushes = 0;
  int blocks_since_push = 0;
  // open candidate
  bool in_candidate = false;
  bool candidate_aasm = false;
  TimeUs candidate_start_us = 0;
  double candidate_min_ratio = 1;
  bool in_apnea_run = false;
  TimeUs apnea_run_start_us = 0;
  TimeUs best_apnea_start_us = 0, best_apnea_end_us = 0;
  TimeUs refractory_until_us = 0;
  // therapy time (whole microseconds per sample, so that the sum does not depend on how the
  // samples were chunked) and counts
  int64_t flow_us = 0;
  int64_t apneas = 0, hypopneas = 0, not_scored_leak = 0;
  // SpO2 history (valid samples only) and AASM candidates waiting for it
  std::deque<std::pair<TimeUs, float>> spo2;
  TimeUs spo2_latest_us = 0;
  std::vector<PendingHypopnea> pending;
  // large-leak intervals from the device's leak signal, oldest first; events held for it
  std::deque<std::pair<TimeUs, TimeUs>> large_leak;
  TimeUs leak_latest_us = 0;  // 0: no leak signal seen
  std::vector<HeldEvent> held;

  void ResetFlow() {
    flow_baseline_ready = false;
    block_fill = 0;
    block_max = 0;
    blocks = 0;
    vent_sum = apnea_sum = 0;
    amplitude_pushes = 0;
    ventilation_pushes = 0;
    blocks_since_push = 0;
    amplitude_baseline = 0;
    ventilation_baseline = 0;
    in_candidate = false;
    in_apnea_run = false;
  }

  bool LeakOverlaps(TimeUs from, TimeUs to) const {
    return std::any_of(large_leak.begin(), large_leak.end(),
                       [&](const auto& l) { return l.first <= to && l.second >= from; });
  }

  std::string Snapshot() const override {
    SnapshotWriter w;
    w.Put(kSnapshotVersion);
    w.Put(flow_baseline);
    w.Put<uint8_t>(flow_baseline_ready);
    w.Put<int32_t>(block_fill);
    w.Put(block_max);
    w.Put(block_sum);
    w.Put(block_start_us);
    w.Put(next_expected_us);
    w.PutSpan<double>(ring_max);
    w.PutSpan<double>(ring_sum);
    w.PutSpan<TimeUs>(ring_time);
    w.Put(blocks);
    w.Put(vent_sum);
    w.Put(apnea_sum);
    w.Put(amplitude_baseline);
    w.Put(ventilation_baseline);
    w.PutSpan<float>(history);
    w.Put(amplitude_pushes);
    w.Put(ventilation_pushes);
    w.Put<int32_t>(blocks_since_push);
    w.Put<uint8_t>(in_candidate);
    w.Put<uint8_t>(candidate_aasm);
    w.Put(candidate_start_us);
    w.Put(candidate_min_ratio);
    w.Put<uint8_t>(in_apnea_run);
    w.Put(apnea_run_start_us);
    w.Put(best_apnea_start_us);
    w.Put(best_apnea_end_us);
    w.Put(refractory_until_us);
    w.Put(static_cast<double>(flow_us) / 1e6);  // seconds, as the format has it
    w.Put(apneas);
    w.Put(hypopneas);
    w.Put(not_scored_leak);
    std::vector<TimeUs> t;
    std::vector<float> v;
    for (const auto& [ts, val] : spo2) {
      t.push_back(ts);
      v.push_back(val);
    }
    w.PutSpan<TimeUs>(t);
    w.PutSpan<float>(v);
    w.Put(spo2_latest_us);
    w.Put<uint64_t>(pending.size());
    for (const auto& p : pending) {
      w.Put(p.start_us);
      w.Put(p.end_us);
      w.Put(p.drop);
    }
    w.Put<uint64_t>(large_leak.size());
    for (const auto& [from, to] : large_leak) {
      w.Put(from);
      w.Put(to);
    }
    w.Put(leak_latest_us);
    w.Put<uint64_t>(held.size());
    for (const auto& h : held) {
      w.Put<uint8_t>(h.apnea);
      w.Put<uint8_t>(h.aasm);
      w.Put(h.start_us);
      w.Put(h.end_us);
      w.Put(h.drop);
    }
    return w.Take();
  }
  void Restore(std::string_view bytes) override {
    SnapshotReader r(bytes);
    ReadVersion(r, RespiratoryEvents::kName, kSnapshotVersion);
    EventState s;
    s.flow_baseline = r.Get<double>();
    s.flow_baseline_ready = r.Get<uint8_t>();
    s.block_fill = r.Get<int32_t>();
    s.block_max = r.Get<double>();
    s.block_sum = r.Get<double>();
    s.block_start_us = r.Get<TimeUs>();
    s.next_expected_us = r.Get<TimeUs>();
    const auto rm = r.GetVector<double>(kMaxWindowBlocks);
    const auto rs = r.GetVector<double>(kMaxWindowBlocks);
    const auto rt = r.GetVector<TimeUs>(kMaxWindowBlocks);
    if (rm.size() != kMaxWindowBlocks || rs.size() != kMaxWindowBlocks ||
        rt.size() != kMaxWindowBlocks) {
      throw SnapshotError("respiration.events: ring size");
    }
    std::copy(rm.begin(), rm.end(), s.ring_max.begin());
    std::copy(rs.begin(), rs.end(), s.ring_sum.begin());
    std::copy(rt.begin(), rt.end(), s.ring_time.begin());
    s.blocks = r.Get<int64_t>();
    s.vent_sum = r.Get<double>();
    s.apnea_sum = r.Get<double>();
    s.amplitude_baseline = r.Get<double>();
    s.ventilation_baseline = r.Get<double>();
    s.history = r.GetVector<float>(100000);
    s.amplitude_pushes = r.Get<int64_t>();
    s.ventilation_pushes = r.Get<int64_t>();
    s.blocks_since_push = r.Get<int32_t>();
    s.in_candidate = r.Get<uint8_t>();
    s.candidate_aasm = r.Get<uint8_t>();
    s.candidate_start_us = r.Get<TimeUs>();
    s.candidate_min_ratio = r.Get<double>();
    s.in_apnea_run = r.Get<uint8_t>();
    s.apnea_run_start_us = r.Get<TimeUs>();
    s.best_apnea_start_us = r.Get<TimeUs>();
    s.best_apnea_end_us = r.Get<TimeUs>();
    s.refractory_until_us = r.Get<TimeUs>();
    const double flow_seconds = r.Get<double>();
    s.apneas = r.Get<int64_t>();
    s.hypopneas = r.Get<int64_t>();
    s.not_scored_leak = r.Get<int64_t>();
    const auto t = r.GetVector<TimeUs>();
    const auto v = r.GetVector<float>();
    if (t.size() != v.size()) throw SnapshotError("respiration.events: SpO2 history");
    for (size_t i = 0; i < t.size(); ++i) s.spo2.emplace_back(t[i], v[i]);
    s.spo2_latest_us = r.Get<TimeUs>();
    const auto n = r.Get<uint64_t>();
    if (n > 100000) throw SnapshotError("respiration.events: pending");
    for (uint64_t i = 0; i < n; ++i) {
      PendingHypopnea p;
      p.start_us = r.Get<TimeUs>();
      p.end_us = r.Get<TimeUs>();
      p.drop = r.Get<double>();
      s.pending.push_back(p);
    }
    const auto nl = r.Get<uint64_t>();
    if (nl > 100000) throw SnapshotError("respiration.events: large-leak intervals");
    for (uint64_t i = 0; i < nl; ++i) {
      const auto from = r.Get<TimeUs>();
      const auto to = r.Get<TimeUs>();
      s.large_leak.emplace_back(from, to);
    }
    s.leak_latest_us = r.Get<TimeUs>();
    const auto nh = r.Get<uint64_t>();
    if (nh > 100000) throw SnapshotError("respiration.events: held events");
    for (uint64_t i = 0; i < nh; ++i) {
      HeldEvent h;
      h.apnea = r.Get<uint8_t>();
      h.aasm = r.Get<uint8_t>();
      h.start_us = r.Get<TimeUs>();
      h.end_us = r.Get<TimeUs>();
      h.drop = r.Get<double>();
      s.held.push_back(h);
    }
    r.ExpectEnd();
    // Values normal processing cannot have written (fuzz_snapshot: counters whose sum overflowed
    // in Finish): a corrupt snapshot, refused like a malformed one.
    constexpr int64_t kMaxCount = int64_t{1} << 40;
    const auto count_ok = [](int64_t c) { return c >= 0 && c <= kMaxCount; };
    if (!count_ok(s.apneas) || !count_ok(s.hypopneas) || !count_ok(s.not_scored_leak) ||
        !count_ok(s.blocks) || !count_ok(s.amplitude_pushes) || !count_ok(s.ventilation_pushes) ||
        s.block_fill < 0 || s.blocks_since_push < 0 || !std::isfinite(flow_seconds) ||
        flow_seconds < 0 || flow_seconds > 1e12 ||
        std::abs(s.next_expected_us) > kMaxPlausibleTimeUs ||
        std::abs(s.block_start_us) > kMaxPlausibleTimeUs) {
      throw SnapshotError("respiration.events: counters or times out of range");
    }
    s.flow_us = std::llround(flow_seconds * 1e6);
    *this = std::move(s);
  }
};

EventState& Cast(OperatorState& state) {
  return StateCast<EventState>(state, RespiratoryEvents::kName);
}

int Blocks(double seconds) {
  return std::clamp(static_cast<int>(std::lround(seconds / kBlockS)), 1, kMaxWindowBlocks - 1);
}

}  // namespace

namespace {

const ParameterTable<RespiratoryEventOptions>& EventParameters() {
  using O = RespiratoryEventOptions;
  constexpr double kMaxWindowS = kBlockS * (kMaxWindowBlocks - 1);
  static const ParameterTable<O> table = {
      {"apnea_drop", &O::apnea_drop, 0.5, 1, "fraction",
       "AASM apnea (with SpO2): drop of the flow amplitude from its baseline"},
      {"hypopnea_drop", &O::hypopnea_drop, 0.1, 1, "fraction",
       "AASM hypopnea (with SpO2): drop of the flow amplitude; at most apnea_drop"},
      {"device_apnea_drop", &O::device_apnea_drop, 0.5, 1, "fraction",
       "device convention (flow only): drop of the 2-s ventilation that is an apnea"},
      {"device_hypopnea_fraction", &O::device_hypopnea_fraction, 0, 0.9, "fraction",
       "device convention: 8-s ventilation at or below this fraction of baseline is a hypopnea; "
       "at least 1 - device_apnea_drop"},
      {"desaturation_pct", &O::desaturation_pct, 1, 20, "%",
       "SpO2 fall below its pre-event level that confirms an AASM hypopnea"},
      {"desaturation_lookahead_s", &O::desaturation_lookahead_s, 0, 120, "s",
       "how long after an event's end its desaturation may come"},
      {"min_event_s", &O::min_event_s, 5, 60, "s", "shortest apnea or hypopnea"},
      {"max_event_s", &O::max_event_s, 5, 600, "s",
       "longest candidate that is an event; at least min_event_s"},
      {"envelope_window_s", &O::envelope_window_s, kBlockS, kMaxWindowS, "s",
       "window of the AASM peak flow amplitude"},
      {"apnea_window_s", &O::apnea_window_s, kBlockS, kMaxWindowS, "s",
       "centred window of the device convention's apnea ventilation"},
      {"ventilation_window_s", &O::ventilation_window_s, 1, kMaxWindowS, "s",
       "centred window of the device convention's hypopnea ventilation"},
      {"baseline_window_s", &O::baseline_window_s, 10, 1200, "s",
       "window of the ventilation baseline (median)"},
      {"warmup_s", &O::warmup_s, 0, 1200, "s", "no events this long after mask-on or a gap"},
      {"refractory_s", &O::refractory_s, 0, 120, "s", "no new event this long after one"},
      {"large_leak_lpm", &O::large_leak_lpm, 1, 200, "L/min",
       "device leak above which nothing is scored (ResMed scores at low leak only)"},
      {"flow_baseline_tau_s", &O::flow_baseline_tau_s, 1, 600, "s",
       "running mean the flow is taken about"},
  };
  return table;
}

}  // namespace

RespiratoryEventOptions RespiratoryEventOptions::FromParameters(const Parameters& parameters) {
  return EventParameters().Read(RespiratoryEvents::kName, parameters);
}

const OperatorSpec& RespiratoryEvents::Spec() {
  static const OperatorSpec spec{
      kName,
      kVersion,
      "apnea and hypopnea (AASM with SpO2, ResMed convention without), AHI",
      kInputs,
      EventParameters().Describe(),
      // Scored into the AHI; alarming each one would flood clinicians.
      {{EpisodeKind::kApnea, "APNEA", AlarmPriority::kLow, false, false, 0,
        SignalFamily::kRespiratory, false},
       {EpisodeKind::kHypopnea, "", AlarmPriority::kLow, false, false, 0,
        SignalFamily::kRespiratory, false}},
      {{"therapy_hours", "h", "therapy time seen, at the end of a recording"},
       {"ahi", "/h", "apneas and hypopneas per hour of therapy, at the end of a recording"}},
      [](const Parameters& p, const OperatorContext&) -> std::unique_ptr<const StreamOperator> {
        return Make(RespiratoryEventOptions::FromParameters(p));
      }};
  return spec;
}

std::unique_ptr<const RespiratoryEvents> RespiratoryEvents::Make(const RespiratoryEventOptions& o) {
  EventParameters().Check(kName, o);
  RequireParameter(o.hypopnea_drop <= o.apnea_drop, kName, "hypopnea_drop", o.hypopnea_drop,
                   "must be at most apnea_drop");
  RequireParameter(o.device_hypopnea_fraction >= 1 - o.device_apnea_drop, kName,
                   "device_hypopnea_fraction", o.device_hypopnea_fraction,
                   "must be at least 1 - device_apnea_drop");
  RequireParameter(o.max_event_s >= o.min_event_s, kName, "max_event_s", o.max_event_s,
                   "must be at least min_event_s");
  return std::unique_ptr<const RespiratoryEvents>(new RespiratoryEvents(o));
}

std::unique_ptr<OperatorState> RespiratoryEvents::MakeState() const {
  return std::make_unique<EventState>();
}

namespace {

Episode MakeEpisode(EpisodeKind kind, TimeUs start, TimeUs end, std::string rule, std::string note,
                    std::vector<Measure> measures, std::vector<Limit> limits) {
  Episode e;
  e.kind = kind;
  e.phase = Episode::Phase::kClosed;
  e.start_us = start;
  e.end_us = end;
  e.why.algorithm = std::string(RespiratoryEvents::kName);
  e.why.version = std::string(RespiratoryEvents::kVersion);
  e.why.rule = std::move(rule);
  e.why.note = std::move(note);
  e.why.measures = std::move(measures);
  e.why.limits = std::move(limits);
  return e;
}

// Resolves AASM candidates whose SpO2 look-ahead has arrived (or all, when `flush`).
void ResolvePending(const RespiratoryEventOptions& o, EventState& s, bool flush, Events& out) {
  const TimeUs look = FromSeconds(o.desaturation_lookahead_s);
  auto it = s.pending.begin();
  while (it != s.pending.end()) {
    if (!flush && s.spo2_latest_us < it->end_us + look) {
      ++it;
      continue;
    }
    double pre_sum = 0;
    int pre_n = 0;
    double nadir = 1e9;
    for (const auto& [t, v] : s.spo2) {
      if (t >= it->start_us - 10 * kMicrosPerSecond && t < it->start_us) {
        pre_sum += v;
        ++pre_n;
      }
      if (t >= it->start_us && t <= it->end_us + look) nadir = std::min<double>(nadir, v);
    }
    if (pre_n > 0 && nadir < 1e9) {
      const double desat = pre_sum / pre_n - nadir;
      if (desat >= o.desaturation_pct) {
        ++s.hypopneas;
        out.emplace_back(MakeEpisode(
            EpisodeKind::kHypopnea, it->start_us, it->end_us,
            fmt::format(">= {:.0f} % amplitude drop for >= {:.0f} s with >= {:.0f} % SpO2 "
                        "desaturation",
                        o.hypopnea_drop * 100, o.min_event_s, o.desaturation_pct),
            fmt::format("AASM rule (SpO2 available): >= {:.0f} % drop + >= {:g} % desaturation",
                        o.hypopnea_drop * 100, o.desaturation_pct),
            {{"amplitude_drop", it->drop * 100, "%"},
             {"duration", ToSeconds(it->end_us - it->start_us), "s"},
             {"desaturation", desat, "%"}},
            {{"hypopnea_drop", o.hypopnea_drop * 100, "%", ">="},
             {"desaturation", o.desaturation_pct, "%", ">="}}));
      }
    }
    it = s.pending.erase(it);
  }
}

// Records the device's leak samples above the large-leak limit as intervals (each sample stands
// for one sample period either side), merged when they touch.
void TrackLeak(const RespiratoryEventOptions& o, EventState& s, const Chunk& chunk) {
  const TimeUs period = static_cast<TimeUs>(1e6 / chunk.sample_rate_hz);
  for (size_t i = 0; i < chunk.values.size(); ++i) {
    const float v = chunk.values[i];
    if (std::isnan(v) || v <= o.large_leak_lpm) continue;
    const TimeUs t =
        SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
    if (!s.large_leak.empty() && s.large_leak.back().second >= t - period) {
      s.large_leak.back().second = std::max(s.large_leak.back().second, t + period);
    } else {
      s.large_leak.emplace_back(t - period, t + period);
    }
  }
  const TimeUs newest = chunk.end_us();
  s.leak_latest_us = std::max(s.leak_latest_us, newest);
  while (!s.large_leak.empty() && s.large_leak.front().second < newest - kLeakKeepUs) {
    s.large_leak.pop_front();
  }
}

// Scores a held event, unless it overlapped a large leak.
void Decide(const RespiratoryEventOptions& o, EventState& s, const HeldEvent& h, Events& out) {
  if (s.LeakOverlaps(h.start_us, h.end_us)) {
    ++s.not_scored_leak;
    return;
  }
  const double duration_s = ToSeconds(h.end_us - h.start_us);
  if (h.apnea) {
    ++s.apneas;
    if (h.aasm) {
      out.emplace_back(
          MakeEpisode(EpisodeKind::kApnea, h.start_us, h.end_us,
                      fmt::format(">= {:.0f} % amplitude drop for >= {:.0f} s", o.apnea_drop * 100,
                                  o.min_event_s),
                      "AASM apnea rule (flow amplitude vs pre-event baseline)",
                      {{"amplitude_drop", h.drop * 100, "%"}, {"duration", duration_s, "s"}},
                      {{"apnea_drop", o.apnea_drop * 100, "%", ">="},
                       {"min_duration", o.min_event_s, "s", ">="}}));
    } else {
      out.emplace_back(MakeEpisode(
          EpisodeKind::kApnea, h.start_us, h.end_us,
          fmt::format("{:.0f}-s ventilation <= {:.0f} % of baseline for >= {:.0f} s",
                      o.apnea_window_s, (1 - o.device_apnea_drop) * 100, o.min_event_s),
          fmt::format("device convention (ResMed), no SpO2: ventilation falls >= {:.0f} % for "
                      ">= {:g} s",
                      o.device_apnea_drop * 100, o.min_event_s),
          {{"ventilation_drop", h.drop * 100, "%"}, {"duration", duration_s, "s"}},
          {{"apnea_drop", o.device_apnea_drop * 100, "%", ">="},
           {"min_duration", o.min_event_s, "s", ">="}}));
    }
  } else if (h.aasm) {
    s.pending.push_back({h.start_us, h.end_us, h.drop});  // waits for the SpO2 look-ahead
  } else {
    ++s.hypopneas;
    out.emplace_back(MakeEpisode(
        EpisodeKind::kHypopnea, h.start_us, h.end_us,
        fmt::format("{:.0f}-s ventilation <= {:.0f} % of baseline for >= {:.0f} s",
                    o.ventilation_window_s, o.device_hypopnea_fraction * 100, o.min_event_s),
        fmt::format("device convention (ResMed), no SpO2: ventilation <= {:.0f} % for >= {:g} s",
                    o.device_hypopnea_fraction * 100, o.min_event_s),
        {{"ventilation_drop", h.drop * 100, "%"}, {"duration", duration_s, "s"}},
        {{"ventilation_fraction", o.device_hypopnea_fraction * 100, "%", "<="},
         {"min_duration", o.min_event_s, "s", ">="}}));
  }
}

// Decides the held events the leak signal has caught up with, those the flow has left more than
// kLeakWaitUs behind (the leak signal stopped), or all of them (`flush`).
constexpr TimeUs kLeakWaitUs = 60 * kMicrosPerSecond;
void ReleaseHeld(const RespiratoryEventOptions& o, EventState& s, TimeUs flow_now, bool flush,
                 Events& out) {
  auto it = s.held.begin();
  while (it != s.held.end()) {
    if (!flush && it->end_us > s.leak_latest_us && it->end_us + kLeakWaitUs > flow_now) {
      ++it;
      continue;
    }
    Decide(o, s, *it, out);
    it = s.held.erase(it);
  }
}

}  // namespace

void RespiratoryEvents::OnGap(OperatorState& state, Signal signal, TimeUs, TimeUs, Events&) const {
  if (signal == Signal::kFlow) Cast(state).ResetFlow();
}

void RespiratoryEvents::Finish(OperatorState& state, Events& out) const {
  auto& s = Cast(state);
  ReleaseHeld(options_, s, 0, true, out);
  ResolvePending(options_, s, true, out);
  s.ResetFlow();
  const double hours = static_cast<double>(s.flow_us) / 3.6e9;
  const TimeUs t = s.next_expected_us;
  out.emplace_back(Measurement{"therapy_hours", hours, t});
  if (hours > 0) {
    out.emplace_back(Measurement{"ahi", static_cast<double>(s.apneas + s.hypopneas) / hours, t});
  }
}

void RespiratoryEvents::Process(OperatorState& state, Signal signal, const Chunk& chunk,
                                Events& out) const {
  auto& s = Cast(state);
  if (chunk.values.empty() || !(chunk.sample_rate_hz > 0)) return;
  if (signal == Signal::kLeak) {
    TrackLeak(options_, s, chunk);
    if (!s.held.empty()) ReleaseHeld(options_, s, 0, false, out);
    if (!s.pending.empty()) ResolvePending(options_, s, false, out);
    return;
  }
  if (signal == Signal::kSpo2) {
    for (size_t i = 0; i < chunk.values.size(); ++i) {
      const float v = chunk.values[i];
      if (std::isnan(v) || v <= 0 || v > 100) continue;
      const TimeUs t =
          SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
      s.spo2.emplace_back(t, v);
      s.spo2_latest_us = std::max(s.spo2_latest_us, t);
    }
    while (!s.spo2.empty() && s.spo2.front().first < s.spo2_latest_us - kSpo2KeepUs) {
      s.spo2.pop_front();
    }
    ResolvePending(options_, s, false, out);
    return;
  }
  if (signal != Signal::kFlow) return;

  const double dt = 1.0 / chunk.sample_rate_hz;
  const TimeUs period_us = static_cast<TimeUs>(1e6 * dt);
  if (s.next_expected_us != 0 &&
      std::llabs(chunk.first_sample_us - s.next_expected_us) > 2 * period_us) {
    s.ResetFlow();
  }
  s.next_expected_us = chunk.end_us();

  const int per_block = std::max(1, static_cast<int>(std::lround(chunk.sample_rate_hz * kBlockS)));
  const double block_s = per_block * dt;
  const int w = Blocks(options_.envelope_window_s);
  const int wv = Blocks(options_.ventilation_window_s);
  const int wa = Blocks(options_.apnea_window_s);
  const int wmax = std::max({w, wv, wa});
  const double flow_alpha = dt / options_.flow_baseline_tau_s;
  const int blocks_per_second = std::max(1, static_cast<int>(std::lround(1.0 / block_s)));
  std::vector<float> scratch;
  const int64_t warmup_blocks = static_cast<int64_t>(options_.warmup_s / block_s);
  const double apnea_level = 1 - options_.apnea_drop;
  const double device_apnea_level = 1 - options_.device_apnea_drop;
  const double device_level = options_.device_hypopnea_fraction;
  const double min_event_us = options_.min_event_s * 1e6;
  const double max_event_us = options_.max_event_s * 1e6;
  const TimeUs refractory_us = FromSeconds(options_.refractory_s);
  const TimeUs spo2_recent_us = 30 * kMicrosPerSecond;
  const size_t cap = static_cast<size_t>(options_.baseline_window_s);

  double fb = s.flow_baseline;
  const size_t n = chunk.values.size();
  size_t valid = 0;
  for (size_t i = 0; i < n; ++i) {
    const float raw = chunk.values[i];
    if (std::isnan(raw)) {
      s.ResetFlow();
      continue;
    }
    ++valid;
    if (!s.flow_baseline_ready) {
      fb = raw;
      s.flow_baseline_ready = true;
    }
    fb += flow_alpha * (raw - fb);
    const double a = std::fabs(raw - fb);
    if (s.block_fill == 0) {
      s.block_start_us =
          SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
      s.block_max = a;
      s.block_sum = a;
    } else {
      if (a > s.block_max) s.block_max = a;
      s.block_sum += a;
    }
    if (++s.block_fill < per_block) continue;
    s.block_fill = 0;

    // A block is complete: update the measures and the candidate.
    const int slot = static_cast<int>(s.blocks % kMaxWindowBlocks);
    s.ring_max[slot] = s.block_max;
    s.ring_sum[slot] = s.block_sum / per_block;
    s.ring_time[slot] = s.block_start_us;
    ++s.blocks;
    const TimeUs now = s.block_start_us;
    const auto at = [&](int64_t block) { return static_cast<int>(block % kMaxWindowBlocks); };
    // Running sums (O(1) per block): the newest block enters the ventilation window, the one wv
    // blocks older leaves; likewise for the apnea window in its middle.
    const int apnea_from = wv / 2 - wa / 2;
    s.vent_sum += s.ring_sum[slot];
    if (s.blocks > wv) s.vent_sum -= s.ring_sum[at(s.blocks - 1 - wv)];
    if (s.blocks > apnea_from) s.apnea_sum += s.ring_sum[at(s.blocks - 1 - apnea_from)];
    if (s.blocks > apnea_from + wa) s.apnea_sum -= s.ring_sum[at(s.blocks - 1 - apnea_from - wa)];
    if (s.blocks < wmax) continue;
    double env = 0;  // peak excursion over the last w blocks
    for (int k = 1; k <= w; ++k) env = std::max(env, s.ring_max[at(s.blocks - k)]);
    // Ventilation over the last wv blocks, and over the wa blocks in its middle: both moving
    // averages are centred on the same block, so one time (half the long window ago) describes
    // both and an event's duration is not stretched by the difference of their lags.
    const double vent = s.vent_sum / wv;
    const double vent_apnea = s.apnea_sum / wa;
    const TimeUs oldest = s.ring_time[at(s.blocks - w)];  // start of the peak window
    const TimeUs vent_now = s.ring_time[at(s.blocks - 1 - wv / 2)];

    // Per-second histories; the medians move slowly: refresh them every 5 s (every second while
    // warming up), never while a candidate is open (the event must not lower its own baseline).
    if (++s.blocks_since_push >= blocks_per_second) {
      s.blocks_since_push = 0;
      if (s.history.size() != 2 * cap) s.history.assign(2 * cap, 0.0f);
      if (!s.in_candidate) {
        s.history[static_cast<size_t>(s.amplitude_pushes % static_cast<int64_t>(cap))] =
            static_cast<float>(env);
        ++s.amplitude_pushes;
      }
      s.history[cap + static_cast<size_t>(s.ventilation_pushes % static_cast<int64_t>(cap))] =
          static_cast<float>(vent);
      ++s.ventilation_pushes;
      if (!s.in_candidate && (s.ventilation_pushes <= 10 || s.ventilation_pushes % 5 == 0)) {
        const auto median = [&](size_t offset, int64_t pushes) {
          const size_t n_hist = std::min<size_t>(cap, static_cast<size_t>(pushes));
          if (n_hist == 0) return 0.0;
          scratch.assign(s.history.begin() + static_cast<std::ptrdiff_t>(offset),
                         s.history.begin() + static_cast<std::ptrdiff_t>(offset + n_hist));
          std::nth_element(scratch.begin(),
                           scratch.begin() + static_cast<std::ptrdiff_t>(n_hist / 2),
                           scratch.end());
          return static_cast<double>(scratch[n_hist / 2]);
        };
        s.amplitude_baseline = median(0, s.amplitude_pushes);
        s.ventilation_baseline = median(cap, s.ventilation_pushes);
      }
    }
    if (s.blocks < warmup_blocks || s.amplitude_baseline <= 0 || s.ventilation_baseline <= 0) {
      continue;  // warm-up: no scoring
    }
    const double ratio = env / s.amplitude_baseline;
    const double vent_ratio = vent / s.ventilation_baseline;
    const double apnea_ratio = vent_apnea / s.ventilation_baseline;
    if (!s.in_candidate) {
      if (now < s.refractory_until_us) continue;
      const bool spo2_valid = !s.spo2.empty() && s.spo2_latest_us >= now - spo2_recent_us;
      const bool open = spo2_valid
                            ? ratio <= 1 - options_.hypopnea_drop
                            : vent_ratio <= device_level || apnea_ratio <= device_apnea_level;
      if (!open) continue;
      s.in_candidate = true;
      s.candidate_aasm = spo2_valid;
      s.candidate_start_us = spo2_valid ? oldest : vent_now;
      s.candidate_min_ratio = spo2_valid ? ratio : vent_ratio;
      s.in_apnea_run = false;
      s.best_apnea_start_us = s.best_apnea_end_us = 0;
    }
    // Inside a candidate (baselines held).
    s.candidate_min_ratio = std::min(s.candidate_min_ratio, s.candidate_aasm ? ratio : vent_ratio);
    const bool apnea_low =
        s.candidate_aasm ? ratio <= apnea_level : apnea_ratio <= device_apnea_level;
    const TimeUs apnea_t = s.candidate_aasm ? now : vent_now;
    if (apnea_low) {
      if (!s.in_apnea_run) {
        s.in_apnea_run = true;
        s.apnea_run_start_us = s.candidate_aasm ? oldest : vent_now;
      }
    } else if (s.in_apnea_run) {
      s.in_apnea_run = false;
      if (apnea_t - s.apnea_run_start_us > s.best_apnea_end_us - s.best_apnea_start_us) {
        s.best_apnea_start_us = s.apnea_run_start_us;
        s.best_apnea_end_us = apnea_t;
      }
    }
    const bool still_low = s.candidate_aasm ? ratio <= 1 - options_.hypopnea_drop
                                            : vent_ratio <= device_level || s.in_apnea_run;
    const TimeUs end_us = s.candidate_aasm ? now : vent_now;
    const double elapsed = static_cast<double>(end_us - s.candidate_start_us);
    if (still_low && elapsed <= max_event_us) continue;
    // The candidate ended (or became too long to be an event).
    s.in_candidate = false;
    if (elapsed > max_event_us) {
      s.in_apnea_run = false;
      continue;
    }
    const double drop = 1 - s.candidate_min_ratio;
    const double apnea_us = static_cast<double>(s.best_apnea_end_us - s.best_apnea_start_us);
    if (apnea_us < min_event_us && elapsed < min_event_us) continue;
    s.refractory_until_us = end_us + refractory_us;
    HeldEvent h;
    h.apnea = apnea_us >= min_event_us;
    h.aasm = s.candidate_aasm;
    h.start_us = h.apnea ? s.best_apnea_start_us : s.candidate_start_us;
    h.end_us = h.apnea ? s.best_apnea_end_us : end_us;
    h.drop = drop;
    if (s.leak_latest_us != 0 && s.leak_latest_us < h.end_us) {
      s.held.push_back(h);  // the leak signal has not covered the event yet
    } else {
      Decide(options_, s, h, out);
    }
  }
  if (!s.held.empty()) ReleaseHeld(options_, s, s.next_expected_us, false, out);
  s.flow_baseline = fb;
  s.flow_us += static_cast<int64_t>(valid) * std::llround(dt * 1e6);
}

}  // namespace vigil::ops
