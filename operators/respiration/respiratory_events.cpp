#include "operators/respiration/respiratory_events.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "operators/core/options.h"

namespace vigil::ops {
namespace {

constexpr uint32_t kSnapshotVersion = 1;
constexpr double kBlockS = 0.2;
constexpr int kMaxWindowBlocks = 64;
constexpr TimeUs kSpo2KeepUs = 300 * kMicrosPerSecond;

struct PendingHypopnea {
  TimeUs start_us = 0, end_us = 0;
  double drop = 0;  // fraction of baseline amplitude lost at the deepest point
};

struct EventState final : OperatorState {
  // flow baseline and block accumulation
  double flow_baseline = 0;
  bool flow_baseline_ready = false;
  int block_fill = 0;
  double block_max = 0;
  TimeUs block_start_us = 0;
  TimeUs next_expected_us = 0;
  // envelope ring: block maxima and their start times
  double block_sum = 0;
  std::array<double, kMaxWindowBlocks> ring_max{};
  std::array<double, kMaxWindowBlocks> ring_sum{};
  std::array<TimeUs, kMaxWindowBlocks> ring_time{};
  int64_t blocks = 0;  // since the last discontinuity
  double amplitude_baseline = 0;
  double ventilation_baseline = 0;
  // amplitude history for the baseline: one envelope value per second outside candidates
  std::vector<float> history;
  int64_t history_pushes = 0;
  int blocks_since_push = 0;
  // open candidate
  bool in_candidate = false;
  bool candidate_aasm = false;
  TimeUs candidate_start_us = 0;
  double candidate_min_ratio = 1;
  bool in_apnea_run = false;
  TimeUs apnea_run_start_us = 0;
  TimeUs best_apnea_start_us = 0, best_apnea_end_us = 0;
  // therapy time and counts
  double flow_seconds = 0;
  int64_t apneas = 0, hypopneas = 0;
  // SpO2 history (valid samples only) and AASM candidates waiting for it
  std::deque<std::pair<TimeUs, float>> spo2;
  TimeUs spo2_latest_us = 0;
  std::vector<PendingHypopnea> pending;

  void ResetFlow() {
    flow_baseline_ready = false;
    block_fill = 0;
    block_max = 0;
    blocks = 0;
    history_pushes = 0;
    blocks_since_push = 0;
    amplitude_baseline = 0;
    ventilation_baseline = 0;
    in_candidate = false;
    in_apnea_run = false;
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
    w.Put(amplitude_baseline);
    w.Put(ventilation_baseline);
    w.PutSpan<float>(history);
    w.Put(history_pushes);
    w.Put<int32_t>(blocks_since_push);
    w.Put<uint8_t>(in_candidate);
    w.Put<uint8_t>(candidate_aasm);
    w.Put(candidate_start_us);
    w.Put(candidate_min_ratio);
    w.Put<uint8_t>(in_apnea_run);
    w.Put(apnea_run_start_us);
    w.Put(best_apnea_start_us);
    w.Put(best_apnea_end_us);
    w.Put(flow_seconds);
    w.Put(apneas);
    w.Put(hypopneas);
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
    return w.Take();
  }
  void Restore(std::string_view bytes) override {
    SnapshotReader r(bytes);
    if (r.Get<uint32_t>() != kSnapshotVersion) throw SnapshotError("respiration.events: version");
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
    s.amplitude_baseline = r.Get<double>();
    s.ventilation_baseline = r.Get<double>();
    s.history = r.GetVector<float>(100000);
    s.history_pushes = r.Get<int64_t>();
    s.blocks_since_push = r.Get<int32_t>();
    s.in_candidate = r.Get<uint8_t>();
    s.candidate_aasm = r.Get<uint8_t>();
    s.candidate_start_us = r.Get<TimeUs>();
    s.candidate_min_ratio = r.Get<double>();
    s.in_apnea_run = r.Get<uint8_t>();
    s.apnea_run_start_us = r.Get<TimeUs>();
    s.best_apnea_start_us = r.Get<TimeUs>();
    s.best_apnea_end_us = r.Get<TimeUs>();
    s.flow_seconds = r.Get<double>();
    s.apneas = r.Get<int64_t>();
    s.hypopneas = r.Get<int64_t>();
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
    r.ExpectEnd();
    *this = std::move(s);
  }
};

EventState& Cast(OperatorState& s) {
  auto* p = dynamic_cast<EventState*>(&s);
  if (!p) throw std::logic_error("respiration.events: state of another operator");
  return *p;
}

int WindowBlocks(const RespiratoryEventOptions& o) {
  return std::clamp(static_cast<int>(std::lround(o.envelope_window_s / kBlockS)), 1,
                    kMaxWindowBlocks);
}

}  // namespace

RespiratoryEventOptions RespiratoryEventOptions::FromParameters(const Parameters& parameters) {
  ParameterReader p("respiration.events", parameters);
  RespiratoryEventOptions o;
  o.apnea_drop = p.Get("apnea_drop", o.apnea_drop);
  o.hypopnea_drop = p.Get("hypopnea_drop", o.hypopnea_drop);
  o.device_hypopnea_fraction = p.Get("device_hypopnea_fraction", o.device_hypopnea_fraction);
  o.desaturation_pct = p.Get("desaturation_pct", o.desaturation_pct);
  o.desaturation_lookahead_s = p.Get("desaturation_lookahead_s", o.desaturation_lookahead_s);
  o.min_event_s = p.Get("min_event_s", o.min_event_s);
  o.max_event_s = p.Get("max_event_s", o.max_event_s);
  o.envelope_window_s = p.Get("envelope_window_s", o.envelope_window_s);
  o.ventilation_window_s = p.Get("ventilation_window_s", o.ventilation_window_s);
  o.baseline_window_s = p.Get("baseline_window_s", o.baseline_window_s);
  o.warmup_s = p.Get("warmup_s", o.warmup_s);
  o.flow_baseline_tau_s = p.Get("flow_baseline_tau_s", o.flow_baseline_tau_s);
  p.CheckAllUsed();
  return o;
}

std::unique_ptr<const RespiratoryEvents> RespiratoryEvents::Make(
    const RespiratoryEventOptions& o) {
  RequireRange("respiration.events.apnea_drop", o.apnea_drop, 0.5, 1);
  RequireRange("respiration.events.hypopnea_drop", o.hypopnea_drop, 0.1, o.apnea_drop);
  RequireRange("respiration.events.device_hypopnea_fraction", o.device_hypopnea_fraction,
               1 - o.apnea_drop, 0.9);
  RequireRange("respiration.events.desaturation_pct", o.desaturation_pct, 1, 20);
  RequireRange("respiration.events.desaturation_lookahead_s", o.desaturation_lookahead_s, 0, 120);
  RequireRange("respiration.events.min_event_s", o.min_event_s, 5, 60);
  RequireRange("respiration.events.max_event_s", o.max_event_s, o.min_event_s, 600);
  RequireRange("respiration.events.envelope_window_s", o.envelope_window_s, kBlockS,
               kBlockS * kMaxWindowBlocks);
  RequireRange("respiration.events.ventilation_window_s", o.ventilation_window_s, 1,
               kBlockS * (kMaxWindowBlocks - 1));
  RequireRange("respiration.events.baseline_window_s", o.baseline_window_s, 10, 1200);
  RequireRange("respiration.events.warmup_s", o.warmup_s, 0, 1200);
  RequireRange("respiration.events.flow_baseline_tau_s", o.flow_baseline_tau_s, 1, 600);
  return std::unique_ptr<const RespiratoryEvents>(new RespiratoryEvents(o));
}

std::unique_ptr<OperatorState> RespiratoryEvents::MakeState() const {
  return std::make_unique<EventState>();
}

namespace {

Episode MakeEpisode(EpisodeKind kind, TimeUs start, TimeUs end, std::string rule,
                    std::string note, std::vector<Measure> measures, std::vector<Limit> limits) {
  Episode e;
  e.kind = kind;
  e.phase = Episode::Phase::kClosed;
  e.start_us = start;
  e.end_us = end;
  e.why.algorithm = "respiration.events";
  e.why.version = "1.0.0";
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
            "AASM rule (SpO2 available): >= 30 % drop + >= 3 % desaturation",
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

}  // namespace

void RespiratoryEvents::OnGap(OperatorState& state, Signal signal, TimeUs, TimeUs,
                              Events&) const {
  if (signal == Signal::kFlow) Cast(state).ResetFlow();
}

void RespiratoryEvents::Finish(OperatorState& state, Events& out) const {
  auto& s = Cast(state);
  ResolvePending(options_, s, true, out);
  s.ResetFlow();
  const double hours = s.flow_seconds / 3600.0;
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
  const int w = WindowBlocks(options_);
  const int wv = std::clamp(static_cast<int>(std::lround(options_.ventilation_window_s / kBlockS)),
                            1, kMaxWindowBlocks - 1);
  const double flow_alpha = dt / options_.flow_baseline_tau_s;
  const int blocks_per_second = std::max(1, static_cast<int>(std::lround(1.0 / block_s)));
  std::vector<float> scratch;
  const int64_t warmup_blocks = static_cast<int64_t>(options_.warmup_s / block_s);
  const double apnea_level = 1 - options_.apnea_drop;
  const double min_event_us = options_.min_event_s * 1e6;
  const double max_event_us = options_.max_event_s * 1e6;
  const TimeUs spo2_recent_us = 30 * kMicrosPerSecond;

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
      s.block_start_us = SampleTime(chunk.first_sample_us, chunk.sample_rate_hz,
                                    static_cast<int64_t>(i));
      s.block_max = a;
      s.block_sum = a;
    } else {
      if (a > s.block_max) s.block_max = a;
      s.block_sum += a;
    }
    if (++s.block_fill < per_block) continue;
    s.block_fill = 0;

    // A block is complete: update both envelopes and the candidate.
    const int slot = static_cast<int>(s.blocks % kMaxWindowBlocks);
    s.ring_max[slot] = s.block_max;
    s.ring_sum[slot] = s.block_sum / per_block;
    s.ring_time[slot] = s.block_start_us;
    ++s.blocks;
    const TimeUs now = s.block_start_us;
    if (s.blocks < std::max(w, wv)) continue;
    const auto at = [&](int64_t block) { return static_cast<int>(block % kMaxWindowBlocks); };
    double env = 0;  // peak excursion over the last w blocks
    for (int k = 1; k <= w; ++k) env = std::max(env, s.ring_max[at(s.blocks - k)]);
    double vent = 0;  // mean |flow| over the last wv blocks (ventilation)
    for (int k = 1; k <= wv; ++k) vent += s.ring_sum[at(s.blocks - k)];
    vent /= wv;
    const TimeUs oldest = s.ring_time[at(s.blocks - w)];  // start of the peak window
    // The ventilation window is centred on its middle block: its times lag by wv / 2 blocks.
    const TimeUs vent_now = s.ring_time[at(s.blocks - 1 - wv / 2)];

    // The baselines: medians of the last `baseline_window_s` of per-second values seen outside
    // candidates (robust to sighs and to the breaths of an arousal).
    const auto push_history = [&] {
      if (++s.blocks_since_push < blocks_per_second) return;
      s.blocks_since_push = 0;
      const size_t cap = static_cast<size_t>(options_.baseline_window_s);
      if (s.history.size() != 2 * cap) s.history.assign(2 * cap, 0.0f);
      const size_t pos = static_cast<size_t>(s.history_pushes % static_cast<int64_t>(cap));
      s.history[pos] = static_cast<float>(env);
      s.history[cap + pos] = static_cast<float>(vent);
      ++s.history_pushes;
      // The medians move slowly: refresh them every 5 s (and at every push while warming up).
      if (s.history_pushes > 10 && s.history_pushes % 5 != 0) return;
      const size_t n_hist = std::min<size_t>(cap, static_cast<size_t>(s.history_pushes));
      const auto median = [&](size_t offset) {
        scratch.assign(s.history.begin() + static_cast<std::ptrdiff_t>(offset),
                       s.history.begin() + static_cast<std::ptrdiff_t>(offset + n_hist));
        std::nth_element(scratch.begin(),
                         scratch.begin() + static_cast<std::ptrdiff_t>(n_hist / 2), scratch.end());
        return static_cast<double>(scratch[n_hist / 2]);
      };
      s.amplitude_baseline = median(0);
      s.ventilation_baseline = median(cap);
    };
    if (s.blocks < warmup_blocks || s.amplitude_baseline <= 0 || s.ventilation_baseline <= 0) {
      push_history();  // warm-up: no scoring
      continue;
    }
    const double ratio = env / s.amplitude_baseline;
    const double vent_ratio = vent / s.ventilation_baseline;
    if (!s.in_candidate) {
      const bool spo2_valid = !s.spo2.empty() && s.spo2_latest_us >= now - spo2_recent_us;
      const bool open = spo2_valid ? ratio <= 1 - options_.hypopnea_drop
                                   : vent_ratio <= options_.device_hypopnea_fraction ||
                                         ratio <= apnea_level;
      if (open) {
        s.in_candidate = true;
        s.candidate_aasm = spo2_valid;
        s.candidate_start_us = spo2_valid ? oldest : std::min(oldest, vent_now);
        s.candidate_min_ratio = spo2_valid ? ratio : vent_ratio;
        s.in_apnea_run = false;
        s.best_apnea_start_us = s.best_apnea_end_us = 0;
      } else {
        push_history();
        continue;
      }
    }
    // Inside a candidate (baselines frozen).
    s.candidate_min_ratio = std::min(s.candidate_min_ratio, s.candidate_aasm ? ratio : vent_ratio);
    if (ratio <= apnea_level) {
      if (!s.in_apnea_run) {
        s.in_apnea_run = true;
        s.apnea_run_start_us = oldest;
      }
    } else if (s.in_apnea_run) {
      s.in_apnea_run = false;
      if (now - s.apnea_run_start_us > s.best_apnea_end_us - s.best_apnea_start_us) {
        s.best_apnea_start_us = s.apnea_run_start_us;
        s.best_apnea_end_us = now;
      }
    }
    const bool still_low = s.candidate_aasm
                               ? ratio <= 1 - options_.hypopnea_drop
                               : vent_ratio <= options_.device_hypopnea_fraction ||
                                     ratio <= apnea_level || s.in_apnea_run;
    const TimeUs end_us = s.candidate_aasm ? now : std::max(now, vent_now);
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
    if (apnea_us >= min_event_us) {
      ++s.apneas;
      out.emplace_back(MakeEpisode(
          EpisodeKind::kApnea, s.best_apnea_start_us, s.best_apnea_end_us,
          fmt::format(">= {:.0f} % amplitude drop for >= {:.0f} s", options_.apnea_drop * 100,
                      options_.min_event_s),
          "AASM apnea rule (flow amplitude vs pre-event baseline)",
          {{"amplitude_drop", drop * 100, "%"}, {"duration", apnea_us * 1e-6, "s"}},
          {{"apnea_drop", options_.apnea_drop * 100, "%", ">="},
           {"min_duration", options_.min_event_s, "s", ">="}}));
    } else if (elapsed >= min_event_us) {
      if (s.candidate_aasm) {
        s.pending.push_back({s.candidate_start_us, end_us, drop});
      } else {
        ++s.hypopneas;
        out.emplace_back(MakeEpisode(
            EpisodeKind::kHypopnea, s.candidate_start_us, end_us,
            fmt::format("ventilation <= {:.0f} % of baseline for >= {:.0f} s",
                        options_.device_hypopnea_fraction * 100, options_.min_event_s),
            "device convention (ResMed), no SpO2: ventilation <= 50 % for >= 10 s",
            {{"amplitude_drop", drop * 100, "%"}, {"duration", elapsed * 1e-6, "s"}},
            {{"amplitude_fraction", options_.device_hypopnea_fraction * 100, "%", "<="},
             {"min_duration", options_.min_event_s, "s", ">="}}));
      }
    }
  }
  s.flow_baseline = fb;
  s.flow_seconds += static_cast<double>(valid) * dt;
}

}  // namespace vigil::ops
