#include "operators/ecg/pulse_detector.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/filters/filter_design.h"

namespace vigil::ecg {
namespace {
constexpr double kLearnS = 2.0;  // SSF maximum over the first seconds sets the first level
constexpr double kShapeS = 0.4;  // the upstroke kept of each pulse

// The last kShapeS of the ring (oldest first) at kPulseShapePoints points, mean removed,
// unit norm (all zero when flat).
std::array<float, kPulseShapePoints> Shape(const std::vector<float>& ring, int64_t written) {
  std::array<float, kPulseShapePoints> shape{};
  const auto n = static_cast<int64_t>(ring.size());
  double mean = 0;
  for (int k = 0; k < kPulseShapePoints; ++k) {
    const int64_t back = n - 1 - (n - 1) * k / (kPulseShapePoints - 1);  // n-1 .. 0 samples ago
    shape[static_cast<size_t>(k)] = ring[static_cast<size_t>(((written - 1 - back) % n + n) % n)];
    mean += shape[static_cast<size_t>(k)];
  }
  mean /= kPulseShapePoints;
  double norm = 0;
  for (auto& v : shape) {
    v = static_cast<float>(v - mean);
    norm += double{v} * v;
  }
  if (norm > 0) {
    for (auto& v : shape) v = static_cast<float>(v / std::sqrt(norm));
  }
  return shape;
}

double Correlation(const std::array<float, kPulseShapePoints>& a,
                   const std::array<float, kPulseShapePoints>& b) {
  double c = 0;
  for (int k = 0; k < kPulseShapePoints; ++k)
    c += double{a[static_cast<size_t>(k)]} * b[static_cast<size_t>(k)];
  return c;
}
}  // namespace

const ops::ParameterTable<PulseOptions>& PulseParameters() {
  using O = PulseOptions;
  static const ops::ParameterTable<O> table = {
      {"pulse_lowpass_hz", &O::lowpass_hz, 2, 40, "Hz", "low-pass of the pulsatile waveform"},
      {"pulse_ssf_window_s", &O::ssf_window_s, 0.02, 0.5, "s",
       "window of the slope sum function (Zong et al. 2003: 128 ms)"},
      {"pulse_threshold_fraction", &O::threshold_fraction, 0.1, 0.95, "fraction",
       "share of the recent slope-sum peaks that detects a pulse"},
      {"pulse_floor_fraction", &O::floor_fraction, 0, 0.9, "fraction",
       "floor of the threshold, so that a flat line gives no pulses"},
      {"pulse_refractory_s", &O::refractory_s, 0.1, 1, "s", "shortest interval between pulses"},
      {"pulse_min_rate_bpm", &O::min_rate_bpm, 10, 100, "bpm",
       "slowest plausible pulse rate (quality)"},
      {"pulse_max_rate_bpm", &O::max_rate_bpm, 11, 350, "bpm",
       "fastest plausible pulse rate; above pulse_min_rate_bpm"},
      {"pulse_regularity", &O::regularity, 0.05, 1, "fraction",
       "intervals within this share of their median count as regular (Sun et al. 2006)"},
      {"pulse_min_pulses", &O::min_pulses, 2, 20, "pulses", "fewest pulses a verdict needs"},
      {"pulse_min_shape_correlation", &O::min_shape_correlation, -1, 1, "",
       "median correlation of consecutive upstrokes of a good pulse (Li & Clifford 2012)"},
  };
  return table;
}

PulseDetector PulseDetector::Make(const PulseOptions& o) {
  PulseParameters().Check(kEcgOperatorName, o);
  ops::RequireParameter(o.max_rate_bpm >= o.min_rate_bpm + 1, kEcgOperatorName,
                        "pulse_max_rate_bpm", o.max_rate_bpm, "must exceed pulse_min_rate_bpm");
  return PulseDetector(o);
}

void PulseDetector::Start(State& s, double fs) const {
  s = State{};
  s.sample_rate_hz = fs;
  s.lowpass = filters::BiquadCascade(
      filters::ButterworthLowPass(2, std::min(options_.lowpass_hz, 0.4 * fs), fs));
  s.recent.assign(
      static_cast<size_t>(std::max(double{kPulseShapePoints}, std::round(kShapeS * fs))), 0.0f);
}

void PulseDetector::Restart(State& s) const {
  if (s.sample_rate_hz > 0) Start(s, s.sample_rate_hz);
}

void PulseDetector::Process(State& s, const ops::Chunk& chunk) const {
  const double fs = chunk.sample_rate_hz;
  if (!(fs >= 25 && fs <= 2000) || chunk.values.empty()) return;
  if (fs != s.sample_rate_hz) Start(s, fs);
  const size_t window = static_cast<size_t>(std::max(1.0, std::round(options_.ssf_window_s * fs)));
  const int64_t refractory = static_cast<int64_t>(options_.refractory_s * fs);
  const int64_t learn = static_cast<int64_t>(kLearnS * fs);
  const int64_t decay_after = static_cast<int64_t>(60.0 / options_.min_rate_bpm * fs);
  const double delay_s = s.lowpass.GroupDelaySamples(2.0, fs) / fs;
  for (size_t i = 0; i < chunk.values.size(); ++i) {
    if (s.samples == 0) s.origin = std::isfinite(chunk.values[i]) ? chunk.values[i] : 0.0f;
    float x = chunk.values[i] - s.origin;
    if (!std::isfinite(x)) x = s.previous;  // an invalid sample adds no slope
    const float y = static_cast<float>(s.lowpass.Step(x));
    s.recent[static_cast<size_t>(s.samples % static_cast<int64_t>(s.recent.size()))] = y;
    const float d = s.samples > 0 ? std::max(0.0f, y - s.previous) : 0.0f;
    s.previous = y;
    s.diffs.push_back(d);
    s.ssf += d;
    if (s.diffs.size() > window) {
      s.ssf -= s.diffs.front();
      s.diffs.pop_front();
    }
    ++s.samples;
    if (s.samples <= learn) {
      s.learn_max = std::max(s.learn_max, s.ssf);
      if (s.samples == learn) s.level = s.long_level = s.learn_max;
      continue;
    }
    if (s.level <= 0) continue;
    const ops::TimeUs t = ops::SampleTime(chunk.first_sample_us, fs, static_cast<int64_t>(i)) -
                          ops::FromSeconds(delay_s);
    if (s.in_pulse) {
      s.pulse_peak = std::max(s.pulse_peak, s.ssf);
      if (s.ssf < options_.threshold_fraction * s.level * 0.5) {
        // The hump is over: its peak updates the levels.
        s.in_pulse = false;
        s.level += 0.25 * (s.pulse_peak - s.level);
        s.long_level += 0.05 * (s.pulse_peak - s.long_level);
        s.pulses.push_back(
            {s.pulse_time_us, static_cast<float>(s.pulse_peak), Shape(s.recent, s.samples)});
      }
      continue;
    }
    const int64_t since = s.last_pulse_sample < 0 ? s.samples : s.samples - s.last_pulse_sample;
    if (since > decay_after) {
      // No pulse for longer than the slowest plausible interval: lower the level, not below
      // the floor (amplitude dropped, or there is no pulse at all).
      s.level = std::max(s.level * (1.0 - 1.0 / fs), options_.floor_fraction * s.long_level);
    }
    if (s.ssf > options_.threshold_fraction * s.level && since > refractory) {
      s.in_pulse = true;
      s.pulse_peak = s.ssf;
      s.pulse_time_us = t;
      s.last_pulse_sample = s.samples;
    }
  }
  s.last_time_us = chunk.end_us();
  const ops::TimeUs keep_from = s.last_time_us - ops::FromSeconds(kKeepS);
  while (!s.pulses.empty() &&
         (s.pulses.front().time_us < keep_from || s.pulses.size() > kMaxPulses)) {
    s.pulses.pop_front();
  }
}

PulseVerdict PulseDetector::Judge(const State& s, ops::TimeUs from_us, ops::TimeUs to_us) const {
  PulseVerdict v;
  std::vector<double> intervals;
  std::vector<double> peaks;
  std::vector<double> correlations;
  const Pulse* previous = nullptr;
  for (const auto& p : s.pulses) {
    if (p.time_us < from_us || p.time_us > to_us) continue;
    ++v.pulses;
    peaks.push_back(p.ssf_peak);
    if (previous != nullptr) {
      intervals.push_back(ops::ToSeconds(p.time_us - previous->time_us));
      correlations.push_back(Correlation(previous->shape, p.shape));
    }
    previous = &p;
  }
  if (intervals.empty()) {
    v.why = "fewer than two pulses";
    return v;
  }
  auto median = [](std::vector<double> x) {
    std::nth_element(x.begin(), x.begin() + static_cast<long>(x.size() / 2), x.end());
    return x[x.size() / 2];
  };
  const double mid = median(intervals);
  v.rate_bpm = 60.0 / mid;
  if (v.pulses < options_.min_pulses) {
    v.why = "too few pulses";
    return v;
  }
  const double shortest = 60.0 / options_.max_rate_bpm, longest = 60.0 / options_.min_rate_bpm;
  int close = 0;
  for (const double iv : intervals) {
    if (iv < shortest || iv > longest) {
      v.why = "implausible pulse interval";
      return v;
    }
    close += std::fabs(iv - mid) <= options_.regularity * mid;
  }
  if (close < 0.75 * static_cast<double>(intervals.size())) {
    v.why = "irregular pulse intervals";
    return v;
  }
  const double peak_mid = median(peaks);
  v.amplitude = peak_mid;
  v.shape_correlation = median(correlations);
  for (const double p : peaks) {
    if (p < peak_mid / 3) {
      v.why = "pulse amplitudes inconsistent";
      return v;
    }
  }
  if (v.shape_correlation < options_.min_shape_correlation) {
    v.why = "pulse shapes differ";
    return v;
  }
  v.good = true;
  return v;
}

void PulseDetector::State::Save(ops::SnapshotWriter& w) const {
  w.Put<double>(sample_rate_hz);
  if (sample_rate_hz <= 0) return;
  w.Put<float>(origin);
  w.PutSpan<float>(recent);
  const auto filter = lowpass.SaveState();
  w.PutSpan<double>(filter);
  const std::vector<float> d(diffs.begin(), diffs.end());
  w.PutSpan<float>(d);
  w.Put<double>(ssf);
  w.Put<float>(previous);
  w.Put<int64_t>(samples);
  w.Put<double>(level);
  w.Put<double>(long_level);
  w.Put<double>(learn_max);
  w.Put<int64_t>(last_pulse_sample);
  w.Put<uint8_t>(in_pulse);
  w.Put<double>(pulse_peak);
  w.Put<int64_t>(pulse_time_us);
  w.Put<int64_t>(last_time_us);
  w.Put<uint64_t>(pulses.size());
  for (const auto& p : pulses) {
    w.Put<int64_t>(p.time_us);
    w.Put<float>(p.ssf_peak);
    for (const float v : p.shape) w.Put<float>(v);
  }
}

void PulseDetector::Load(State& state, ops::SnapshotReader& r) const {
  const double fs = r.Get<double>();
  state = State{};
  if (fs <= 0) return;
  if (!(fs >= 25 && fs <= 2000)) throw ops::SnapshotError("pulse: bad rate");
  Start(state, fs);
  auto& [sample_rate_hz, origin, lowpass, recent, diffs, ssf, previous, samples, level, long_level,
         learn_max, last_pulse_sample, in_pulse, pulse_peak, pulse_time_us, last_time_us, pulses] =
      state;
  origin = r.Get<float>();
  const auto ring = r.GetVector<float>(recent.size());
  if (ring.size() != recent.size()) throw ops::SnapshotError("pulse: shape ring size");
  recent = ring;
  const auto filter = r.GetVector<double>(16);
  if (filter.size() != lowpass.SaveState().size()) throw ops::SnapshotError("pulse: filter size");
  lowpass.LoadState(filter);
  const auto d = r.GetVector<float>(4096);
  diffs.assign(d.begin(), d.end());
  ssf = r.Get<double>();
  previous = r.Get<float>();
  samples = r.Get<int64_t>();
  level = r.Get<double>();
  long_level = r.Get<double>();
  learn_max = r.Get<double>();
  last_pulse_sample = r.Get<int64_t>();
  in_pulse = r.Get<uint8_t>() != 0;
  pulse_peak = r.Get<double>();
  pulse_time_us = r.Get<int64_t>();
  last_time_us = r.Get<int64_t>();
  const auto n = r.Get<uint64_t>();
  if (n > kMaxPulses) throw ops::SnapshotError("pulse: too many pulses");
  pulses.clear();
  for (uint64_t i = 0; i < n; ++i) {
    Pulse p;
    p.time_us = r.Get<int64_t>();
    p.ssf_peak = r.Get<float>();
    for (float& v : p.shape) v = r.Get<float>();
    pulses.push_back(p);
  }
}

}  // namespace vigil::ecg
