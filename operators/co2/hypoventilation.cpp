#include "operators/co2/hypoventilation.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "operators/adherence/therapy_day.h"
#include "operators/core/options.h"
#include "operators/core/parameters.h"

namespace vigil::ops {
namespace {

constexpr TimeUs kNightCloseDelayUs = 60 * kMicrosPerSecond;
constexpr uint32_t kSnapshotVersion = 1;
constexpr int kMedianN = 5;
constexpr double kBinMmHg = 0.1;  // histogram bins (median resolution)
constexpr int kBins = 1500;       // 0 .. 150 mmHg

struct Co2State final : OperatorState {
  EndTidalExtractor end_tidal;
  // spike filter
  std::array<float, kMedianN> ring{};
  std::array<TimeUs, kMedianN> ring_t{};
  int ring_n = 0;
  int64_t ring_pos = 0;
  bool have_last = false;
  TimeUs last_t = 0;       // last raw value
  TimeUs last_center = 0;  // last filtered value's time
  // runs and episode
  bool run_a = false, run_b = false, open = false;
  TimeUs start_a = 0, start_b = 0, open_start = 0;
  // awake baseline (auto)
  double baseline = -1;
  TimeUs baseline_from = 0;
  std::vector<float> baseline_values;
  // night
  bool have_night = false;
  TherapyDayWindow night;
  std::vector<uint32_t> hist;  // counts per 0.1 mmHg
  uint64_t night_n = 0;
  double night_max = 0, above50_s = 0, above55_s = 0;
  TimeUs night_first = 0, night_last = 0;
  std::deque<double> medians;
  bool trend_open = false;
  TimeUs trend_start = 0;

  std::string Snapshot() const override {
    SnapshotWriter w;
    w.Put(kSnapshotVersion);
    end_tidal.Put(w);
    w.PutSpan<float>(ring);
    w.PutSpan<TimeUs>(ring_t);
    w.Put<int32_t>(ring_n);
    w.Put(ring_pos);
    w.Put<uint8_t>(have_last);
    w.Put(last_t);
    w.Put(last_center);
    w.Put<uint8_t>(run_a);
    w.Put<uint8_t>(run_b);
    w.Put<uint8_t>(open);
    w.Put(start_a);
    w.Put(start_b);
    w.Put(open_start);
    w.Put(baseline);
    w.Put(baseline_from);
    w.PutSpan<float>(baseline_values);
    w.Put<uint8_t>(have_night);
    w.PutString(night.date);
    w.Put(night.start_us);
    w.Put(night.end_us);
    w.PutSpan<uint32_t>(hist);
    w.Put(night_n);
    w.Put(night_max);
    w.Put(above50_s);
    w.Put(above55_s);
    w.Put(night_first);
    w.Put(night_last);
    const std::vector<double> m(medians.begin(), medians.end());
    w.PutSpan<double>(m);
    w.Put<uint8_t>(trend_open);
    w.Put(trend_start);
    return w.Take();
  }
  void Restore(std::string_view bytes) override {
    SnapshotReader r(bytes);
    ReadVersion(r, Hypoventilation::kName, kSnapshotVersion);
    Co2State s;
    s.end_tidal.Get(r);
    const auto ring_v = r.GetVector<float>(kMedianN);
    const auto ring_tv = r.GetVector<TimeUs>(kMedianN);
    if (ring_v.size() != kMedianN || ring_tv.size() != kMedianN) {
      throw SnapshotError("co2.hypoventilation: ring");
    }
    std::copy(ring_v.begin(), ring_v.end(), s.ring.begin());
    std::copy(ring_tv.begin(), ring_tv.end(), s.ring_t.begin());
    s.ring_n = r.Get<int32_t>();
    s.ring_pos = r.Get<int64_t>();
    s.have_last = r.Get<uint8_t>();
    s.last_t = r.Get<TimeUs>();
    s.last_center = r.Get<TimeUs>();
    s.run_a = r.Get<uint8_t>();
    s.run_b = r.Get<uint8_t>();
    s.open = r.Get<uint8_t>();
    s.start_a = r.Get<TimeUs>();
    s.start_b = r.Get<TimeUs>();
    s.open_start = r.Get<TimeUs>();
    s.baseline = r.Get<double>();
    s.baseline_from = r.Get<TimeUs>();
    s.baseline_values = r.GetVector<float>(1u << 20);
    s.have_night = r.Get<uint8_t>();
    s.night.date = r.GetString(16);
    s.night.start_us = r.Get<TimeUs>();
    s.night.end_us = r.Get<TimeUs>();
    s.hist = r.GetVector<uint32_t>(kBins);
    s.night_n = r.Get<uint64_t>();
    s.night_max = r.Get<double>();
    s.above50_s = r.Get<double>();
    s.above55_s = r.Get<double>();
    s.night_first = r.Get<TimeUs>();
    s.night_last = r.Get<TimeUs>();
    const auto m = r.GetVector<double>(1000);
    s.medians.assign(m.begin(), m.end());
    s.trend_open = r.Get<uint8_t>();
    s.trend_start = r.Get<TimeUs>();
    r.ExpectEnd();
    *this = std::move(s);
  }
};

Co2State& Cast(OperatorState& state) {
  return StateCast<Co2State>(state, Hypoventilation::kName);
}

struct Ctx {
  const HypoventilationOptions& o;
  const date::time_zone* zone;
  Co2State& s;
  Events& out;

  Episode Hypo(Episode::Phase phase, TimeUs start, TimeUs end, const std::string& note,
               double value) const {
    Episode e;
    e.kind = EpisodeKind::kSleepHypoventilation;
    e.phase = phase;
    e.start_us = start;
    e.end_us = end;
    e.why.algorithm = std::string(Hypoventilation::kName);
    e.why.version = std::string(Hypoventilation::kVersion);
    e.why.rule = fmt::format(
        "CO2 > {} mmHg for >= {} min, or >= {} mmHg above the awake baseline to > {} mmHg for "
        ">= {} min",
        o.high_mm_hg, o.min_duration_s / 60, o.rise_mm_hg, o.rise_floor_mm_hg,
        o.min_duration_s / 60);
    e.why.note = note;
    e.why.measures = {{"co2", value, "mmHg"}};
    if (s.baseline > 0) e.why.measures.push_back({"awake_baseline", s.baseline, "mmHg"});
    e.why.limits = {{"co2_high", o.high_mm_hg, "mmHg", ">"},
                    {"co2_rise", o.rise_mm_hg, "mmHg", ">="},
                    {"co2_rise_floor", o.rise_floor_mm_hg, "mmHg", ">"},
                    {"min_duration", o.min_duration_s, "s", ">="}};
    return e;
  }

  void EndRuns(TimeUs at) {
    s.run_a = s.run_b = false;
    if (s.open) {
      s.open = false;
      out.emplace_back(
          Hypo(Episode::Phase::kClosed, s.open_start, at, "ended by a gap in the CO2 signal", 0));
    }
  }

  void CloseNight() {
    if (!s.have_night) return;
    s.have_night = false;
    if (s.night_n == 0) return;
    uint64_t acc = 0;
    double median = 0;
    for (int b = 0; b < kBins; ++b) {
      acc += s.hist[static_cast<size_t>(b)];
      if (2 * acc >= s.night_n) {
        median = static_cast<double>(b) / 10.0;  // lower edge: 52.5 exactly is not "> 52.5"
        break;
      }
    }
    const TimeUs t = s.night.end_us;
    out.emplace_back(Measurement{"co2_median_mm_hg", median, t});
    out.emplace_back(Measurement{"co2_max_mm_hg", s.night_max, t});
    out.emplace_back(Measurement{"co2_minutes_above_50", s.above50_s / 60, t});
    out.emplace_back(Measurement{"co2_minutes_above_55", s.above55_s / 60, t});
    if (median > o.hypercapnia_mm_hg) {
      Episode e;
      e.kind = EpisodeKind::kHypercapnia;
      e.phase = Episode::Phase::kClosed;
      e.start_us = s.night_first;
      e.end_us = s.night_last;
      e.why.algorithm = std::string(Hypoventilation::kName);
      e.why.version = std::string(Hypoventilation::kVersion);
      e.why.rule = fmt::format("nightly median CO2 > {} mmHg (7 kPa)", o.hypercapnia_mm_hg);
      e.why.note =
          "chronic hypercapnia threshold (Danish recommendation 2024; HOT-HMV) applied "
          "to the nightly median of the non-invasive CO2, not to a blood gas";
      e.why.measures = {{"co2_median", median, "mmHg"}};
      e.why.limits = {{"hypercapnia", o.hypercapnia_mm_hg, "mmHg", ">"}};
      out.emplace_back(e);
    }
    s.medians.push_back(median);
    while (s.medians.size() > static_cast<size_t>(o.trend_nights)) s.medians.pop_front();
    if (s.medians.size() == static_cast<size_t>(o.trend_nights)) {
      const double n = static_cast<double>(s.medians.size());
      double sx = 0, sy = 0, sxx = 0, sxy = 0;
      for (size_t i = 0; i < s.medians.size(); ++i) {
        const double x = static_cast<double>(i), y = s.medians[i];
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
      }
      const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
      out.emplace_back(Measurement{"co2_trend_mm_hg_per_night", slope, t});
      if (slope >= o.trend_rise_mm_hg_per_night - 1e-9 && !s.trend_open) {
        s.trend_open = true;
        s.trend_start = s.night.start_us;
        Episode e;
        e.kind = EpisodeKind::kCo2RisingTrend;
        e.phase = Episode::Phase::kOpened;
        e.start_us = s.trend_start;
        e.why.algorithm = std::string(Hypoventilation::kName);
        e.why.version = std::string(Hypoventilation::kVersion);
        e.why.rule = fmt::format("slope of the last {} nightly medians >= {} mmHg/night",
                                 o.trend_nights, o.trend_rise_mm_hg_per_night);
        e.why.measures = {{"co2_trend", slope, "mmHg/night"}};
        out.emplace_back(e);
      } else if (slope < o.trend_rise_mm_hg_per_night - 1e-9 && s.trend_open) {
        s.trend_open = false;
        Episode e;
        e.kind = EpisodeKind::kCo2RisingTrend;
        e.phase = Episode::Phase::kClosed;
        e.start_us = s.trend_start;
        e.end_us = s.night.end_us;
        e.why.algorithm = std::string(Hypoventilation::kName);
        e.why.version = std::string(Hypoventilation::kVersion);
        e.why.measures = {{"co2_trend", slope, "mmHg/night"}};
        out.emplace_back(e);
      }
    }
    s.hist.assign(kBins, 0);
    s.night_n = 0;
    s.night_max = 0;
    s.above50_s = s.above55_s = 0;
  }

  void Value(TimeUs t, double v) {
    const TimeUs max_gap = FromSeconds(o.max_gap_s);
    if (s.have_last && t - s.last_t > max_gap) {
      EndRuns(s.last_center);
      s.ring_n = 0;
    }
    if (s.have_night && t >= s.night.end_us) CloseNight();
    if (!s.have_night) {
      s.have_night = true;
      s.night = TherapyDayAt(t, zone);
      s.hist.assign(kBins, 0);
      s.night_first = t;
      if (o.awake_baseline_mm_hg <= 0) {  // a new night: the patient starts it awake
        s.baseline = -1;
        s.baseline_from = t;
        s.baseline_values.clear();
      }
    }
    const double dt = s.have_last ? std::min(ToSeconds(t - s.last_t), o.max_gap_s) : 0;
    s.have_last = true;
    s.last_t = t;

    // Spike filter: median of the last kMedianN values, at the time of the middle one.
    s.ring[static_cast<size_t>(s.ring_pos % kMedianN)] = static_cast<float>(v);
    s.ring_t[static_cast<size_t>(s.ring_pos % kMedianN)] = t;
    ++s.ring_pos;
    s.ring_n = std::min(kMedianN, s.ring_n + 1);
    std::array<float, kMedianN> tmp{};
    std::array<TimeUs, kMedianN> times{};
    for (int k = 0; k < s.ring_n; ++k) {
      const auto idx = static_cast<size_t>((s.ring_pos - 1 - k) % kMedianN);
      tmp[static_cast<size_t>(k)] = s.ring[idx];
      times[static_cast<size_t>(k)] = s.ring_t[idx];
    }
    const auto mid = static_cast<size_t>(s.ring_n / 2);
    const TimeUs tc = times[mid];  // times[0] is the newest
    std::nth_element(tmp.begin(), tmp.begin() + static_cast<std::ptrdiff_t>(mid),
                     tmp.begin() + s.ring_n);
    const double f = tmp[mid];
    s.last_center = tc;

    // Night measures on the cleaned value.
    const int bin = std::clamp(static_cast<int>(std::floor(f / kBinMmHg + 1e-9)), 0, kBins - 1);
    ++s.hist[static_cast<size_t>(bin)];
    ++s.night_n;
    s.night_max = s.night_n == 1 ? f : std::max(s.night_max, f);
    if (f > 50) s.above50_s += dt;
    if (f > 55) s.above55_s += dt;
    s.night_last = t;

    // Awake baseline.
    if (o.awake_baseline_mm_hg > 0) {
      s.baseline = o.awake_baseline_mm_hg;
    } else if (s.baseline <= 0) {
      if (t - s.baseline_from < FromSeconds(o.baseline_minutes * 60)) {
        s.baseline_values.push_back(static_cast<float>(f));
      } else if (!s.baseline_values.empty()) {
        auto& b = s.baseline_values;
        std::nth_element(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(b.size() / 2), b.end());
        s.baseline = b[b.size() / 2];
        b.clear();
      }
    }

    const bool a = f > o.high_mm_hg;
    const bool b =
        s.baseline > 0 && f >= s.baseline + o.rise_mm_hg - 1e-9 && f > o.rise_floor_mm_hg;
    if (a && !s.run_a) s.start_a = tc;
    if (b && !s.run_b) s.start_b = tc;
    s.run_a = a;
    s.run_b = b;
    const TimeUs need = FromSeconds(o.min_duration_s);
    if (!s.open) {
      const bool qa = a && tc - s.start_a >= need;
      const bool qb = b && tc - s.start_b >= need;
      if (qa || qb) {
        s.open = true;
        s.open_start = qa ? s.start_a : s.start_b;
        const std::string note =
            qa ? fmt::format("AASM branch A: CO2 > {} mmHg for >= {} min", o.high_mm_hg,
                             o.min_duration_s / 60)
               : fmt::format(
                     "AASM branch B: rise >= {} mmHg above the awake baseline {:.1f} mmHg "
                     "({}) to > {} mmHg for >= {} min",
                     o.rise_mm_hg, s.baseline,
                     o.awake_baseline_mm_hg > 0 ? "clinician's value"
                                                : "median of the first minutes",
                     o.rise_floor_mm_hg, o.min_duration_s / 60);
        out.emplace_back(Hypo(Episode::Phase::kOpened, s.open_start, 0, note, f));
      }
    } else if (!a && !b) {
      s.open = false;
      out.emplace_back(
          Hypo(Episode::Phase::kClosed, s.open_start, tc, "CO2 back below the limits", f));
    }
  }
};

}  // namespace

namespace {

const ParameterTable<HypoventilationOptions>& Co2Parameters() {
  using O = HypoventilationOptions;
  static const ParameterTable<EndTidalOptions> capnogram = {
      {"capnogram_on_mm_hg", &EndTidalOptions::on_mm_hg, 0.5, 100, "mmHg",
       "capnogram level that starts an expiration (hysteresis)"},
      {"capnogram_off_mm_hg", &EndTidalOptions::off_mm_hg, 0, 100, "mmHg",
       "capnogram level that ends it; below capnogram_on_mm_hg"},
  };
  static const ParameterTable<O> table = [] {
    ParameterTable<O> t = {
        {"high_mm_hg", &O::high_mm_hg, 30, 120, "mmHg",
         "AASM sleep hypoventilation: CO2 above this for min_duration_s"},
        {"rise_mm_hg", &O::rise_mm_hg, 1, 50, "mmHg",
         "AASM second branch: rise above the awake baseline ..."},
        {"rise_floor_mm_hg", &O::rise_floor_mm_hg, 30, 120, "mmHg",
         "... to above this level, for min_duration_s"},
        {"min_duration_s", &O::min_duration_s, 10, 7200, "s",
         "how long either branch must hold (AASM: 10 min)"},
        {"awake_baseline_mm_hg", &O::awake_baseline_mm_hg, 15, 100, "mmHg",
         "the clinician's awake baseline; -1: the median of each night's first baseline_minutes",
         -1},
        {"baseline_minutes", &O::baseline_minutes, 1, 120, "min",
         "start of a night over which the awake baseline is estimated"},
        {"max_gap_s", &O::max_gap_s, 1, 600, "s",
         "holes up to this long are bridged; a longer gap ends every run"},
        {"hypercapnia_mm_hg", &O::hypercapnia_mm_hg, 30, 120, "mmHg",
         "nightly median above which HYPERCAPNIA is raised (7 kPa)"},
        {"trend_nights", &O::trend_nights, 3, 60, "nights", "nights the CO2 trend is fitted over"},
        {"trend_rise_mm_hg_per_night", &O::trend_rise_mm_hg_per_night, 0.01, 20, "mmHg/night",
         "slope of the nightly medians that raises CO2_RISING_TREND"},
    };
    t.Include(&O::end_tidal, capnogram);
    return t;
  }();
  return table;
}

}  // namespace

HypoventilationOptions HypoventilationOptions::FromParameters(const Parameters& parameters,
                                                              std::string time_zone) {
  HypoventilationOptions defaults;
  defaults.time_zone = std::move(time_zone);
  return Co2Parameters().Read(Hypoventilation::kName, parameters, std::move(defaults));
}

const OperatorSpec& Hypoventilation::Spec() {
  static const OperatorSpec spec{
      kName,
      kVersion,
      "end-tidal / transcutaneous CO2: AASM sleep hypoventilation, hypercapnia, trend",
      kInputs,
      Co2Parameters().Describe(),
      {{EpisodeKind::kSleepHypoventilation, "SLEEP_HYPOVENTILATION", AlarmPriority::kMedium, false,
        false, 0, SignalFamily::kCo2},
       {EpisodeKind::kHypercapnia, "CHRONIC_HYPERCAPNIA", AlarmPriority::kLow, false, false, 0,
        SignalFamily::kCo2},
       {EpisodeKind::kCo2RisingTrend, "CO2_RISING_TREND", AlarmPriority::kLow, false, false, 0,
        SignalFamily::kCo2}},
      {{"co2_median_mm_hg", "mmHg", "nightly median CO2", true},
       {"co2_max_mm_hg", "mmHg", "nightly maximum CO2", true},
       {"co2_minutes_above_50", "min", "minutes of the night above 50 mmHg", true},
       {"co2_minutes_above_55", "min", "minutes of the night above 55 mmHg", true},
       {"co2_trend_mm_hg_per_night", "mmHg/night", "slope of the last nights' medians"}},
      [](const Parameters& p, const OperatorContext& c) -> std::unique_ptr<const StreamOperator> {
        return Make(HypoventilationOptions::FromParameters(p, c.time_zone));
      }};
  return spec;
}

std::unique_ptr<const Hypoventilation> Hypoventilation::Make(const HypoventilationOptions& o) {
  const date::time_zone* zone = ZoneOption(kName, o.time_zone);
  Co2Parameters().Check(kName, o);
  RequireParameter(o.end_tidal.off_mm_hg < o.end_tidal.on_mm_hg, kName, "capnogram_off_mm_hg",
                   o.end_tidal.off_mm_hg, "must be below capnogram_on_mm_hg");
  return std::unique_ptr<const Hypoventilation>(new Hypoventilation(o, zone));
}

std::unique_ptr<OperatorState> Hypoventilation::MakeState() const {
  auto s = std::make_unique<Co2State>();
  s->end_tidal = EndTidalExtractor(options_.end_tidal);
  return s;
}

void Hypoventilation::Process(OperatorState& state, Signal signal, const Chunk& chunk,
                              Events& out) const {
  auto& s = Cast(state);
  Ctx c{options_, zone_, s, out};
  if (signal == Signal::kCo2Waveform) {
    s.end_tidal.Process(chunk, [&](TimeUs t, double v) { c.Value(t, v); });
  } else if (signal == Signal::kTranscutaneousCo2) {
    for (size_t i = 0; i < chunk.values.size(); ++i) {
      if (std::isnan(chunk.values[i])) continue;
      c.Value(SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i)),
              chunk.values[i]);
    }
  }
}

void Hypoventilation::OnGap(OperatorState& state, Signal signal, TimeUs, TimeUs,
                            Events& out) const {
  auto& s = Cast(state);
  Ctx c{options_, zone_, s, out};
  if (signal == Signal::kCo2Waveform) s.end_tidal.Reset();
  c.EndRuns(s.last_center);
  s.ring_n = 0;
}

void Hypoventilation::AdvanceTo(OperatorState& state, TimeUs now_us, Events& out) const {
  auto& s = Cast(state);
  Ctx c{options_, zone_, s, out};
  if (s.have_last && now_us - s.last_t > FromSeconds(options_.max_gap_s)) {
    c.EndRuns(s.last_center);
    s.ring_n = 0;
  }
  // A night closes on device time a minute past its end: end-tidal values come a breath after
  // their plateau, and one of the night's last breaths must not reopen it (a later value closes
  // it at once, see Value).
  if (s.have_night && now_us >= s.night.end_us + kNightCloseDelayUs) c.CloseNight();
}

void Hypoventilation::Finish(OperatorState& state, Events& out) const {
  auto& s = Cast(state);
  Ctx c{options_, zone_, s, out};
  c.EndRuns(s.last_center);
  c.CloseNight();
}

}  // namespace vigil::ops
