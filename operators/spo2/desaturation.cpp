#include "operators/spo2/desaturation.h"

#include <date/tz.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>

#include "operators/adherence/therapy_day.h"
#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/core/snapshot.h"
#include "operators/filters/order_statistic.h"

namespace vigil::ops {
namespace {

constexpr uint32_t kSnapshotVersion = 1;
constexpr std::array<double, 2> kDrops = {3, 4};  // ODI3, ODI4 (AASM)
constexpr double kT90Pct = 90;
// The baseline keeps at most one sample a second (SpO2 changes over seconds; a 256-Hz stream
// would otherwise copy 30k values per sample): 600 s at most.
constexpr TimeUs kBaselineStepUs = kMicrosPerSecond;
constexpr size_t kMaxBaselineSamples = 601;

// One desaturation index: a candidate below the frozen baseline, counted once it lasts.
struct Dip {
  TimeUs below_since = 0;  // 0: SpO2 is not below the baseline by the drop
  double baseline = 0;     // frozen when it fell below
  bool counted = false;
  int64_t events = 0;
};

struct NightStats {
  bool open = false;
  TherapyDayWindow window;
  double valid_s = 0, sum_s = 0, t90_s = 0;
  double min = std::numeric_limits<double>::infinity();
};

struct DesaturationState final : OperatorState {
  NightStats night;
  std::array<Dip, kDrops.size()> dips{};
  std::deque<std::pair<TimeUs, float>> recent;  // valid samples of the last baseline_s
  TimeUs last_t = 0;
  double last_v = std::numeric_limits<double>::quiet_NaN();  // the previous valid sample
  TimeUs closed_until = std::numeric_limits<TimeUs>::min();

  std::string Snapshot() const override {
    SnapshotWriter w;
    w.Put(kSnapshotVersion);
    w.Put<uint8_t>(night.open);
    w.PutString(night.window.date);
    w.Put(night.window.start_us);
    w.Put(night.window.end_us);
    for (double v : {night.valid_s, night.sum_s, night.t90_s, night.min}) w.Put(v);
    for (const auto& d : dips) {
      w.Put(d.below_since);
      w.Put(d.baseline);
      w.Put<uint8_t>(d.counted);
      w.Put(d.events);
    }
    w.Put<uint64_t>(recent.size());
    for (const auto& [t, v] : recent) {
      w.Put(t);
      w.Put(v);
    }
    w.Put(last_t);
    w.Put(last_v);
    w.Put(closed_until);
    return w.Take();
  }

  void Restore(std::string_view bytes) override {
    SnapshotReader r(bytes);
    ReadVersion(r, Desaturation::kName, kSnapshotVersion);
    DesaturationState s;
    s.night.open = r.Get<uint8_t>() != 0;
    s.night.window.date = r.GetString(32);
    s.night.window.start_us = r.Get<TimeUs>();
    s.night.window.end_us = r.Get<TimeUs>();
    for (double* v : {&s.night.valid_s, &s.night.sum_s, &s.night.t90_s, &s.night.min}) {
      *v = r.Get<double>();
    }
    for (auto& d : s.dips) {
      d.below_since = r.Get<TimeUs>();
      d.baseline = r.Get<double>();
      d.counted = r.Get<uint8_t>() != 0;
      d.events = r.Get<int64_t>();
      if (d.events < 0) throw SnapshotError("spo2.desaturation: negative count");
    }
    const auto n = r.Get<uint64_t>();
    if (n > kMaxBaselineSamples) throw SnapshotError("spo2.desaturation: baseline too long");
    for (uint64_t i = 0; i < n; ++i) {
      const auto t = r.Get<TimeUs>();
      s.recent.emplace_back(t, r.Get<float>());
    }
    s.last_t = r.Get<TimeUs>();
    s.last_v = r.Get<double>();
    s.closed_until = r.Get<TimeUs>();
    r.ExpectEnd();
    *this = std::move(s);
  }
};

DesaturationState& Cast(OperatorState& state) {
  return StateCast<DesaturationState>(state, Desaturation::kName);
}

const ParameterTable<DesaturationOptions>& DesaturationParameters() {
  using O = DesaturationOptions;
  static const ParameterTable<O> table = {
      {"min_event_s", &O::min_event_s, 1, 120, "s", "shortest desaturation counted (AASM: 10 s)"},
      {"baseline_s", &O::baseline_s, 10, 600, "s",
       "the baseline is the median SpO2 of this long before"},
      {"valid_min_pct", &O::valid_min_pct, 0, 90, "%",
       "SpO2 below this is a sensor error, not a value (oximeters send 0 without a finger)"},
      {"max_gap_s", &O::max_gap_s, 1, 600, "s",
       "a valid sample stands for the time to the next one, at most this long"},
  };
  return table;
}

// The median of the baseline window (0 when empty).
double Median(const std::deque<std::pair<TimeUs, float>>& recent) {
  if (recent.empty()) return 0;
  static thread_local std::vector<float> values;
  values.clear();
  for (const auto& [t, v] : recent) values.push_back(v);
  return filters::OrderStatistic(values, values.size() / 2);
}

}  // namespace

DesaturationOptions DesaturationOptions::FromParameters(const Parameters& parameters,
                                                        std::string time_zone) {
  DesaturationOptions defaults;
  defaults.time_zone = std::move(time_zone);
  return DesaturationParameters().Read(Desaturation::kName, parameters, std::move(defaults));
}

const OperatorSpec& Desaturation::Spec() {
  static const OperatorSpec spec{
      kName,
      kVersion,
      "pulse oximetry per night: ODI3 / ODI4 (AASM), T90, mean and minimum SpO2",
      kInputs,
      DesaturationParameters().Describe(),
      {},
      {{"spo2_mean_pct", "%", "mean SpO2 of the night", true},
       {"spo2_min_pct", "%", "minimum SpO2 of the night", true},
       {"spo2_odi3_per_h", "/h", "desaturations >= 3 % per hour of valid SpO2", true},
       {"spo2_odi4_per_h", "/h", "desaturations >= 4 % per hour of valid SpO2", true},
       {"spo2_t90_min", "min", "time with SpO2 below 90 %", true},
       {"spo2_t90_pct", "%", "share of valid SpO2 time below 90 %", true},
       {"spo2_hours", "h", "valid SpO2 time of the night", true}},
      [](const Parameters& p, const OperatorContext& c) -> std::unique_ptr<const StreamOperator> {
        return Make(DesaturationOptions::FromParameters(p, c.time_zone));
      }};
  return spec;
}

std::unique_ptr<const Desaturation> Desaturation::Make(const DesaturationOptions& o) {
  const date::time_zone* zone = ZoneOption(kName, o.time_zone);
  DesaturationParameters().Check(kName, o);
  return std::unique_ptr<const Desaturation>(new Desaturation(o, zone));
}

std::unique_ptr<OperatorState> Desaturation::MakeState() const {
  return std::make_unique<DesaturationState>();
}

namespace {

void CloseNight(DesaturationState& s, Events& out) {
  NightStats& n = s.night;
  if (!n.open) return;
  n.open = false;
  s.closed_until = n.window.end_us;
  if (n.valid_s > 0) {
    const double hours = n.valid_s / 3600;
    const TimeUs t = n.window.end_us;
    out.emplace_back(Measurement{"spo2_mean_pct", n.sum_s / n.valid_s, t});
    out.emplace_back(Measurement{"spo2_min_pct", n.min, t});
    out.emplace_back(
        Measurement{"spo2_odi3_per_h", static_cast<double>(s.dips[0].events) / hours, t});
    out.emplace_back(
        Measurement{"spo2_odi4_per_h", static_cast<double>(s.dips[1].events) / hours, t});
    out.emplace_back(Measurement{"spo2_t90_min", n.t90_s / 60, t});
    out.emplace_back(Measurement{"spo2_t90_pct", 100 * n.t90_s / n.valid_s, t});
    out.emplace_back(Measurement{"spo2_hours", hours, t});
  }
  n = NightStats{};
  for (auto& d : s.dips) d = Dip{};
}

}  // namespace

void Desaturation::Process(OperatorState& state, Signal signal, const Chunk& chunk,
                           Events& out) const {
  auto& s = Cast(state);
  if (signal != Signal::kSpo2 || !(chunk.sample_rate_hz > 0)) return;
  const TimeUs baseline_us = FromSeconds(options_.baseline_s);
  const TimeUs min_event_us = FromSeconds(options_.min_event_s);
  for (size_t i = 0; i < chunk.values.size(); ++i) {
    const double v = chunk.values[i];
    if (!(v >= options_.valid_min_pct && v <= 100)) continue;  // also NaN
    const TimeUs t =
        SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
    if (t < s.closed_until || (s.last_t != 0 && t <= s.last_t)) continue;  // late or repeated
    if (s.night.open && t >= s.night.window.end_us) CloseNight(s, out);
    if (!s.night.open) {
      s.night.open = true;
      s.night.window = TherapyDayAt(t, zone_);
      s.last_v = std::numeric_limits<double>::quiet_NaN();
    }
    // A hole longer than max_gap_s (probe off) ends any desaturation in progress: the values
    // after it say nothing of how long the one before lasted.
    if (s.last_t != 0 && t - s.last_t > FromSeconds(options_.max_gap_s)) {
      for (auto& d : s.dips) {
        d.below_since = 0;
        d.counted = false;
      }
    }
    // The previous sample stands for the time up to this one.
    if (!std::isnan(s.last_v)) {
      const double dt = std::min(ToSeconds(t - s.last_t), options_.max_gap_s);
      s.night.valid_s += dt;
      s.night.sum_s += s.last_v * dt;
      if (s.last_v < kT90Pct) s.night.t90_s += dt;
    }
    s.night.min = std::min(s.night.min, v);
    s.last_t = t;
    s.last_v = v;
    // Baseline of the samples before this one.
    while (!s.recent.empty() &&
           (s.recent.front().first < t - baseline_us || s.recent.size() >= kMaxBaselineSamples)) {
      s.recent.pop_front();
    }
    // Scored only once the baseline window is at least half full (the start of a stream, or
    // after a probe-off longer than baseline_s): one or two readings are no baseline.
    const bool baseline_known = !s.recent.empty() && t - s.recent.front().first >= baseline_us / 2;
    const double baseline = baseline_known ? Median(s.recent) : 0;
    if (s.recent.empty() || t - s.recent.back().first >= kBaselineStepUs) {
      s.recent.emplace_back(t, static_cast<float>(v));
    }
    if (baseline <= 0) continue;
    for (size_t k = 0; k < kDrops.size(); ++k) {
      Dip& d = s.dips[k];
      if (d.below_since == 0) {
        if (v <= baseline - kDrops[k]) {
          d.below_since = t;
          d.baseline = baseline;
          d.counted = false;
        }
        continue;
      }
      if (v > d.baseline - kDrops[k]) {  // recovered
        d.below_since = 0;
        continue;
      }
      if (!d.counted && t - d.below_since >= min_event_us) {
        d.counted = true;
        ++d.events;
      }
    }
  }
}

void Desaturation::AdvanceTo(OperatorState& state, TimeUs now_us, Events& out) const {
  auto& s = Cast(state);
  if (s.night.open && now_us >= s.night.window.end_us) CloseNight(s, out);
}

void Desaturation::Finish(OperatorState& state, Events& out) const {
  CloseNight(Cast(state), out);
}

}  // namespace vigil::ops
