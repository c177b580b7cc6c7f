#include "operators/respiration/leak.h"

#include <fmt/format.h>

#include <cmath>

#include "operators/core/options.h"
#include "operators/core/parameters.h"

namespace vigil::ops {
namespace {

constexpr uint32_t kSnapshotVersion = 1;

// A condition that must hold for `min_us` to open and fail for `min_us` to close.
struct Debounced {
  bool open = false;
  TimeUs since = 0;  // first time of the current run of the opposite condition; 0 = none
  TimeUs start = 0;  // episode start
  TimeUs last_true = 0;
  double worst = 0;

  void Put(SnapshotWriter& w) const {
    w.Put<uint8_t>(open);
    w.Put(since);
    w.Put(start);
    w.Put(last_true);
    w.Put(worst);
  }
  void Get(SnapshotReader& r) {
    open = r.Get<uint8_t>();
    since = r.Get<TimeUs>();
    start = r.Get<TimeUs>();
    last_true = r.Get<TimeUs>();
    worst = r.Get<double>();
  }
};

struct LeakState final : OperatorState {
  bool device_leak_seen = false;
  double intended_leak_setting = -1;
  // flow-offset estimate accumulation
  double sum = 0;
  int64_t count = 0;
  TimeUs window_start = 0;
  double pressure = std::nan("");
  Debounced large, disconnect;
  TimeUs last_time = 0;

  std::string Snapshot() const override {
    SnapshotWriter w;
    w.Put(kSnapshotVersion);
    w.Put<uint8_t>(device_leak_seen);
    w.Put(intended_leak_setting);
    w.Put(sum);
    w.Put(count);
    w.Put(window_start);
    w.Put(pressure);
    large.Put(w);
    disconnect.Put(w);
    w.Put(last_time);
    return w.Take();
  }
  void Restore(std::string_view bytes) override {
    SnapshotReader r(bytes);
    ReadVersion(r, LeakMonitor::kName, kSnapshotVersion);
    LeakState s;
    s.device_leak_seen = r.Get<uint8_t>();
    s.intended_leak_setting = r.Get<double>();
    s.sum = r.Get<double>();
    s.count = r.Get<int64_t>();
    s.window_start = r.Get<TimeUs>();
    s.pressure = r.Get<double>();
    s.large.Get(r);
    s.disconnect.Get(r);
    s.last_time = r.Get<TimeUs>();
    r.ExpectEnd();
    *this = s;
  }
};

LeakState& Cast(OperatorState& state) {
  return StateCast<LeakState>(state, LeakMonitor::kName);
}

Episode Make(EpisodeKind kind, Episode::Phase phase, const Debounced& d, TimeUs end,
             const std::string& rule, double limit, const char* limit_name) {
  Episode e;
  e.kind = kind;
  e.phase = phase;
  e.start_us = d.start;
  e.end_us = end;
  e.why.algorithm = "respiration.leak";
  e.why.version = std::string(LeakMonitor::kVersion);
  e.why.rule = rule;
  e.why.measures = {{"leak_max", d.worst, "L/min"}};
  e.why.limits = {{limit_name, limit, "L/min", ">"}};
  return e;
}

// Feeds one observation of a debounced condition; emits open/close episodes.
void Step(Debounced& d, bool condition, double value, TimeUs t, TimeUs min_us, EpisodeKind kind,
          const std::string& rule, double limit, const char* limit_name, Events& out) {
  if (condition) {
    d.last_true = t;
    d.worst = d.open ? std::max(d.worst, value) : d.worst;
  }
  if (condition != d.open) {
    if (d.since == 0) {
      d.since = t;
      if (!d.open) d.worst = value;
    } else if (condition) {
      d.worst = std::max(d.worst, value);
    }
    if (t - d.since >= min_us) {
      if (!d.open) {
        d.open = true;
        d.start = d.since;
        out.emplace_back(Make(kind, Episode::Phase::kOpened, d, 0, rule, limit, limit_name));
      } else {
        d.open = false;
        out.emplace_back(Make(kind, Episode::Phase::kClosed, d, d.since, rule, limit, limit_name));
        d.worst = 0;
      }
      d.since = 0;
    }
  } else {
    d.since = 0;
  }
}

void Close(Debounced& d, TimeUs end, EpisodeKind kind, const std::string& rule, double limit,
           const char* limit_name, Events& out) {
  if (d.open) {
    out.emplace_back(Make(kind, Episode::Phase::kClosed, d, end, rule, limit, limit_name));
  }
  d = Debounced{};
}

}  // namespace

const ParameterTable<LeakOptions>& LeakParameters() {
  static const ParameterTable<LeakOptions> table = {
      {"large_leak_lpm", &LeakOptions::large_leak_lpm, 1, 200, "L/min",
       "unintentional leak above which LARGE_LEAK opens (CLINICAL.md: 24)"},
      {"large_leak_min_s", &LeakOptions::large_leak_min_s, 0, 600, "s",
       "how long the leak must stay above (and then below) the limit"},
      {"disconnect_leak_lpm", &LeakOptions::disconnect_leak_lpm, 1, 300, "L/min",
       "leak at or above which the circuit is open (DISCONNECTION); at least large_leak_lpm"},
      {"disconnect_pressure_cm_h2o", &LeakOptions::disconnect_pressure_cm_h2o, 0, 5, "cmH2O",
       "pressure below which high flow means the blower runs into an open circuit"},
      {"disconnect_flow_lpm", &LeakOptions::disconnect_flow_lpm, 10, 300, "L/min",
       "mean flow above which low pressure means an open circuit"},
      {"disconnect_min_s", &LeakOptions::disconnect_min_s, 0, 600, "s",
       "how long a disconnection must last"},
      {"offset_window_s", &LeakOptions::offset_window_s, 1, 600, "s",
       "window of the total-flow offset (whole breaths integrate to about 0)"},
      {"vent_k_lpm", &LeakOptions::vent_k_lpm, 0, 50, "L/min",
       "intended (vent) leak = k x sqrt(pressure); 0: the flow is already patient flow"},
      {"intended_leak_lpm", &LeakOptions::intended_leak_lpm, 0, 100, "L/min",
       "fixed intended leak; -1: from the device's settings or the vent curve", -1},
  };
  return table;
}

LeakOptions LeakOptions::FromParameters(const Parameters& parameters) {
  return LeakParameters().Read(LeakMonitor::kName, parameters);
}

const OperatorSpec& LeakMonitor::Spec() {
  static const OperatorSpec spec{
      kName,
      kVersion,
      "unintentional leak, large leak (> 24 L/min) and disconnection",
      kInputs,
      LeakParameters().Describe(),
      {{EpisodeKind::kLargeLeak, "LARGE_LEAK", AlarmPriority::kLow, false, false, 0,
        SignalFamily::kRespiratory},
       {EpisodeKind::kDisconnection, "DISCONNECTION", AlarmPriority::kMedium, false, false, 0,
        SignalFamily::kRespiratory}},
      {{"leak_lpm", "L/min", "unintentional leak, per device sample or offset window"}},
      [](const Parameters& p, const OperatorContext&) -> std::unique_ptr<const StreamOperator> {
        return Make(LeakOptions::FromParameters(p));
      }};
  return spec;
}

LeakMonitor::LeakMonitor(const LeakOptions& o)
    : options_(o),
      large_rule_(fmt::format("leak > {} L/min for >= {} s", o.large_leak_lpm, o.large_leak_min_s)),
      disconnect_rule_(
          fmt::format("leak >= {} L/min, or pressure < {} cmH2O with flow > {} L/min, for >= {} s",
                      o.disconnect_leak_lpm, o.disconnect_pressure_cm_h2o, o.disconnect_flow_lpm,
                      o.disconnect_min_s)) {}

std::unique_ptr<const LeakMonitor> LeakMonitor::Make(const LeakOptions& o) {
  LeakParameters().Check(kName, o);
  RequireParameter(o.disconnect_leak_lpm >= o.large_leak_lpm, kName, "disconnect_leak_lpm",
                   o.disconnect_leak_lpm, "must be at least large_leak_lpm");
  return std::unique_ptr<const LeakMonitor>(new LeakMonitor(o));
}

std::unique_ptr<OperatorState> LeakMonitor::MakeState() const {
  return std::make_unique<LeakState>();
}

void LeakMonitor::OnDeviceEvent(OperatorState& state, const DeviceEventView& event, Events&) const {
  auto& s = Cast(state);
  if (event.type == DeviceEventView::Type::kSettings && !std::isnan(event.intended_leak_lpm)) {
    s.intended_leak_setting = event.intended_leak_lpm;
  }
}

void LeakMonitor::OnGap(OperatorState& state, Signal, TimeUs from_us, TimeUs, Events& out) const {
  auto& s = Cast(state);
  const std::string large_rule = fmt::format("leak > {} L/min", options_.large_leak_lpm);
  Close(s.large, from_us, EpisodeKind::kLargeLeak, large_rule, options_.large_leak_lpm,
        "large_leak", out);
  Close(s.disconnect, from_us, EpisodeKind::kDisconnection, "disconnection",
        options_.disconnect_leak_lpm, "disconnect_leak", out);
  s.sum = 0;
  s.count = 0;
}

void LeakMonitor::Finish(OperatorState& state, Events& out) const {
  auto& s = Cast(state);
  OnGap(state, Signal::kLeak, s.last_time, s.last_time, out);
}

void LeakMonitor::Process(OperatorState& state, Signal signal, const Chunk& chunk,
                          Events& out) const {
  auto& s = Cast(state);
  if (chunk.values.empty() || !(chunk.sample_rate_hz > 0)) return;
  const TimeUs large_min = FromSeconds(options_.large_leak_min_s);
  const TimeUs disc_min = FromSeconds(options_.disconnect_min_s);
  const std::string& large_rule = large_rule_;
  const std::string& disc_rule = disconnect_rule_;
  const auto observe = [&](double leak, TimeUs t, bool open_circuit) {
    out.emplace_back(Measurement{"leak_lpm", leak, t});
    Step(s.large, leak > options_.large_leak_lpm, leak, t, large_min, EpisodeKind::kLargeLeak,
         large_rule, options_.large_leak_lpm, "large_leak", out);
    Step(s.disconnect, leak >= options_.disconnect_leak_lpm || open_circuit, leak, t, disc_min,
         EpisodeKind::kDisconnection, disc_rule, options_.disconnect_leak_lpm, "disconnect_leak",
         out);
    s.last_time = t;
  };

  if (signal == Signal::kLeak) {
    s.device_leak_seen = true;
    for (size_t i = 0; i < chunk.values.size(); ++i) {
      const float v = chunk.values[i];
      if (std::isnan(v)) continue;
      observe(v, SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i)),
              false);
    }
    return;
  }
  if (signal == Signal::kAirwayPressure) {
    double sum = 0;
    int n = 0;
    for (float v : chunk.values) {
      if (!std::isnan(v)) {
        sum += v;
        ++n;
      }
    }
    if (n > 0) s.pressure = sum / n;
    return;
  }
  if (signal != Signal::kFlow || s.device_leak_seen) return;
  const int64_t per_window =
      std::max<int64_t>(1, std::llround(options_.offset_window_s * chunk.sample_rate_hz));
  for (size_t i = 0; i < chunk.values.size(); ++i) {
    const float v = chunk.values[i];
    if (std::isnan(v)) continue;
    if (s.count == 0) {
      s.window_start =
          SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
    }
    s.sum += v;
    if (++s.count < per_window) continue;
    const double offset = s.sum / static_cast<double>(s.count);
    double intended = 0;
    if (options_.intended_leak_lpm >= 0) {
      intended = options_.intended_leak_lpm;
    } else if (s.intended_leak_setting >= 0) {
      intended = s.intended_leak_setting;
    } else if (options_.vent_k_lpm > 0 && s.pressure > 0) {
      intended = options_.vent_k_lpm * std::sqrt(s.pressure);
    }
    const bool open_circuit =
        s.pressure < options_.disconnect_pressure_cm_h2o && offset > options_.disconnect_flow_lpm;
    observe(std::max(0.0, offset - intended), s.window_start, open_circuit);
    s.sum = 0;
    s.count = 0;
  }
}

}  // namespace vigil::ops
