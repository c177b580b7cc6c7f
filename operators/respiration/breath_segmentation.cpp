#include "operators/respiration/breath_segmentation.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "operators/core/options.h"
#include "operators/core/parameters.h"

namespace vigil::ops {
namespace {

constexpr uint32_t kSnapshotVersion = 1;

struct BreathState final : OperatorState {
  // Flow segmentation
  double baseline = 0;
  bool baseline_ready = false;
  bool in_inspiration = false;
  bool have_start = false;
  TimeUs start_us = 0;
  TimeUs inspiration_end_us = 0;
  double inspired_ml = 0;
  double peak_lpm = 0;
  TimeUs candidate_start_us = 0;  // inspiration not yet confirmed as a new breath
  double candidate_ml = 0;
  double candidate_peak_lpm = 0;
  TimeUs next_expected_us = 0;  // where the next flow chunk should start; 0 = none yet
  // Therapy context from pressure
  TimeUs pressure_low_from_us = 0, pressure_low_to_us = 0;  // last chunk with low pressure

  void Reset() {
    in_inspiration = false;
    have_start = false;
    inspired_ml = 0;
    peak_lpm = 0;
  }
  std::string Snapshot() const override {
    SnapshotWriter w;
    w.Put(kSnapshotVersion);
    w.Put(baseline);
    w.Put<uint8_t>(baseline_ready);
    w.Put<uint8_t>(in_inspiration);
    w.Put<uint8_t>(have_start);
    w.Put(start_us);
    w.Put(inspiration_end_us);
    w.Put(inspired_ml);
    w.Put(peak_lpm);
    w.Put(candidate_start_us);
    w.Put(candidate_ml);
    w.Put(candidate_peak_lpm);
    w.Put(next_expected_us);
    w.Put(pressure_low_from_us);
    w.Put(pressure_low_to_us);
    return w.Take();
  }
  void Restore(std::string_view bytes) override {
    SnapshotReader r(bytes);
    ReadVersion(r, BreathSegmentation::kName, kSnapshotVersion);
    BreathState s;
    s.baseline = r.Get<double>();
    s.baseline_ready = r.Get<uint8_t>();
    s.in_inspiration = r.Get<uint8_t>();
    s.have_start = r.Get<uint8_t>();
    s.start_us = r.Get<TimeUs>();
    s.inspiration_end_us = r.Get<TimeUs>();
    s.inspired_ml = r.Get<double>();
    s.peak_lpm = r.Get<double>();
    s.candidate_start_us = r.Get<TimeUs>();
    s.candidate_ml = r.Get<double>();
    s.candidate_peak_lpm = r.Get<double>();
    s.next_expected_us = r.Get<TimeUs>();
    s.pressure_low_from_us = r.Get<TimeUs>();
    s.pressure_low_to_us = r.Get<TimeUs>();
    r.ExpectEnd();
    *this = s;
  }
};

BreathState& Cast(OperatorState& state) {
  return StateCast<BreathState>(state, BreathSegmentation::kName);
}

}  // namespace

namespace {

const ParameterTable<BreathSegmentationOptions>& BreathParameters() {
  using O = BreathSegmentationOptions;
  static const ParameterTable<O> table = {
      {"baseline_tau_s", &O::baseline_tau_s, 1, 600, "s",
       "time constant of the flow baseline (a total-flow signal with vent leak works too)"},
      {"hysteresis_lpm", &O::hysteresis_lpm, 0, 30, "L/min",
       "flow above the baseline that starts an inspiration"},
      {"min_tidal_volume_ml", &O::min_tidal_volume_ml, 0, 1000, "mL",
       "smallest inspired volume that is a breath (else a ripple of the expiration)"},
      {"min_phase_s", &O::min_phase_s, 0, 5, "s", "shortest inspiration that is a breath"},
      {"max_breath_s", &O::max_breath_s, 2, 60, "s",
       "longest cycle that is a breath; more than twice min_phase_s"},
      {"min_pressure_cm_h2o", &O::min_pressure_cm_h2o, 0, 30, "cmH2O",
       "pressure below which the patient is not in therapy and nothing is segmented"},
  };
  return table;
}

}  // namespace

BreathSegmentationOptions BreathSegmentationOptions::FromParameters(const Parameters& parameters) {
  return BreathParameters().Read(BreathSegmentation::kName, parameters);
}

const OperatorSpec& BreathSegmentation::Spec() {
  static const OperatorSpec spec{
      kName,
      kVersion,
      "breath segmentation: Vt, Ti/Te, rate, minute ventilation, peak flow",
      kInputs,
      BreathParameters().Describe(),
      {},
      {},
      [](const Parameters& p, const OperatorContext&) -> std::unique_ptr<const StreamOperator> {
        return Make(BreathSegmentationOptions::FromParameters(p));
      }};
  return spec;
}

std::unique_ptr<const BreathSegmentation> BreathSegmentation::Make(
    const BreathSegmentationOptions& o) {
  BreathParameters().Check(kName, o);
  RequireParameter(o.max_breath_s > 2 * o.min_phase_s, kName, "max_breath_s", o.max_breath_s,
                   "must exceed twice min_phase_s");
  return std::unique_ptr<const BreathSegmentation>(new BreathSegmentation(o));
}

std::unique_ptr<OperatorState> BreathSegmentation::MakeState() const {
  return std::make_unique<BreathState>();
}

void BreathSegmentation::OnGap(OperatorState& state, Signal signal, TimeUs, TimeUs, Events&) const {
  if (signal == Signal::kFlow) Cast(state).Reset();
}

void BreathSegmentation::Process(OperatorState& state, Signal signal, const Chunk& chunk,
                                 Events& out) const {
  auto& s = Cast(state);
  if (chunk.values.empty() || !(chunk.sample_rate_hz > 0)) return;
  if (signal == Signal::kAirwayPressure) {
    // Median-free robust enough test: the chunk is "low" when most samples are below the limit.
    size_t low = 0, valid = 0;
    for (float v : chunk.values) {
      if (std::isnan(v)) continue;
      ++valid;
      low += v < options_.min_pressure_cm_h2o;
    }
    if (valid > 0 && low * 2 > valid) {
      s.pressure_low_from_us = chunk.first_sample_us;
      s.pressure_low_to_us = chunk.end_us();
    }
    return;
  }
  if (signal != Signal::kFlow) return;

  const double dt = 1.0 / chunk.sample_rate_hz;
  const TimeUs period_us = static_cast<TimeUs>(1e6 * dt);
  if (s.next_expected_us != 0 &&
      std::llabs(chunk.first_sample_us - s.next_expected_us) > 2 * period_us) {
    s.Reset();  // discontinuity: a new recording or lost frames
    s.baseline_ready = false;
  }
  s.next_expected_us = chunk.end_us();
  const bool therapy_off =
      s.pressure_low_to_us > chunk.first_sample_us && s.pressure_low_from_us < chunk.end_us();
  if (therapy_off) {
    s.Reset();
    return;
  }

  const double alpha = dt / options_.baseline_tau_s;
  const double h = options_.hysteresis_lpm;
  const double ml_per_lpm_sample = dt * 1000.0 / 60.0;
  const TimeUs min_phase_us = FromSeconds(options_.min_phase_s);
  const TimeUs max_breath_us = FromSeconds(options_.max_breath_s);
  const auto time_of = [&](size_t i) {
    return SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
  };

  double baseline = s.baseline;
  if (!s.baseline_ready) {
    for (float v : chunk.values) {
      if (!std::isnan(v)) {
        baseline = v;
        s.baseline_ready = true;
        break;
      }
    }
  }
  const size_t n = chunk.values.size();
  for (size_t i = 0; i < n; ++i) {
    const float raw = chunk.values[i];
    if (std::isnan(raw)) {  // invalid sample: the breath in progress cannot be measured
      s.Reset();
      continue;
    }
    const double x = raw;
    baseline += alpha * (x - baseline);
    const double d = x - baseline;
    if (s.in_inspiration) {
      if (d > 0) {
        s.candidate_ml += d * ml_per_lpm_sample;
        if (d > s.candidate_peak_lpm) s.candidate_peak_lpm = d;
      }
      if (d < -h) {
        // End of a candidate inspiration: it starts a new breath only if it moved enough air
        // for long enough; otherwise it was a ripple in the previous breath's expiration.
        s.in_inspiration = false;
        const TimeUs now = time_of(i);
        if (s.candidate_ml >= options_.min_tidal_volume_ml &&
            now - s.candidate_start_us >= min_phase_us) {
          if (s.have_start) {
            const TimeUs ti = s.inspiration_end_us - s.start_us;
            const TimeUs te = s.candidate_start_us - s.inspiration_end_us;
            const TimeUs total = s.candidate_start_us - s.start_us;
            if (te >= min_phase_us && total <= max_breath_us) {
              Breath b;
              b.start_us = s.start_us;
              b.end_us = s.candidate_start_us;
              b.inspiratory_time_s = static_cast<float>(ToSeconds(ti));
              b.expiratory_time_s = static_cast<float>(ToSeconds(te));
              b.tidal_volume_ml = static_cast<float>(s.inspired_ml);
              b.respiratory_rate_bpm = static_cast<float>(60.0 / ToSeconds(total));
              b.minute_ventilation_lpm = b.tidal_volume_ml * b.respiratory_rate_bpm / 1000.0f;
              b.peak_inspiratory_flow_lpm = static_cast<float>(s.peak_lpm);
              out.emplace_back(b);
            }
          }
          s.have_start = true;
          s.start_us = s.candidate_start_us;
          s.inspiration_end_us = now;
          s.inspired_ml = s.candidate_ml;
          s.peak_lpm = s.candidate_peak_lpm;
        }
      }
    } else if (d > h) {
      s.in_inspiration = true;
      s.candidate_start_us = time_of(i);
      s.candidate_ml = d * ml_per_lpm_sample;
      s.candidate_peak_lpm = d;
    }
  }
  s.baseline = baseline;
}

}  // namespace vigil::ops
