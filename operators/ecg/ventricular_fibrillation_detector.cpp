#include "operators/ecg/ventricular_fibrillation_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/filters/order_statistic.h"

namespace vigil::ecg {

namespace {

constexpr double kMaxRateHz = 2000;  // snapshot sanity bound (chunks come at 125-1000 Hz)

struct Biquad {
  double b0, b1, b2, a1, a2;
};

// 2nd-order Butterworth sections by the bilinear transform with pre-warping.
Biquad ButterworthLowPass(double fc, double fs) {
  const double k = std::tan(std::numbers::pi * fc / fs);
  const double q = std::numbers::sqrt2;
  const double norm = 1 / (1 + q * k + k * k);
  return {k * k * norm, 2 * k * k * norm, k * k * norm, 2 * (k * k - 1) * norm,
          (1 - q * k + k * k) * norm};
}
Biquad ButterworthHighPass(double fc, double fs) {
  const double k = std::tan(std::numbers::pi * fc / fs);
  const double q = std::numbers::sqrt2;
  const double norm = 1 / (1 + q * k + k * k);
  return {norm, -2 * norm, norm, 2 * (k * k - 1) * norm, (1 - q * k + k * k) * norm};
}

double Run(const Biquad& f, double* z, double x) {
  const double y = f.b0 * x + z[0];
  z[0] = f.b1 * x - f.a1 * y + z[1];
  z[1] = f.b2 * x - f.a2 * y;
  return y;
}

constexpr int kGrid = 40;        // Amann et al. 2007: 40 x 40 boxes
constexpr double kDelayS = 0.5;  // and a delay of 0.5 s
constexpr double kHighPassHz = 1.0;
constexpr double kLowPassHz = 30.0;

}  // namespace

const ops::ParameterTable<VentricularFibrillationOptions>& VfParameters() {
  using O = VentricularFibrillationOptions;
  static const ops::ParameterTable<O> table = {
      {"vf_window_s", &O::window_s, 2, 16, "s",
       "window of the leakage and box-counting features; at least quality_block_s"},
      {"vf_leakage_max", &O::leakage_max, 0, 1, "fraction",
       "VF filter leakage (Kuo & Dillman) at or below which a window is fibrillatory"},
      {"vf_boxes_min", &O::boxes_min, 0, 1, "fraction",
       "phase-space boxes visited (Amann et al.) at or above which it is fibrillatory"},
      {"vf_min_amplitude_mv", &O::min_amplitude_mv, 0, 5, "mV",
       "smaller waveforms are not VF (fine VF below this reads as asystole)"},
      {"vf_flutter_leakage_max", &O::flutter_leakage_max, 0, 1, "fraction",
       "leakage at or below which a fibrillatory window is flutter (VFL); at most vf_leakage_max"},
      {"vf_min_s", &O::min_s, 0, 60, "s", "how long VF must last (CinC 2015: 4 s)"},
      {"vf_confirm_windows", &O::confirm_windows, 1, 20, "windows",
       "consecutive fibrillatory windows that confirm an episode"},
      {"vf_clear_s", &O::clear_s, 0, 60, "s", "how long without VF closes an episode"},
      {"vf_organized_rate_max_bpm", &O::organized_rate_max_bpm, 0, 400, "bpm",
       "an organised beat rhythm below this vetoes VF (0: off)"},
  };
  return table;
}

VentricularFibrillationDetector VentricularFibrillationDetector::Make(
    const VentricularFibrillationOptions& o) {
  VfParameters().Check(kEcgOperatorName, o);
  ops::RequireParameter(o.flutter_leakage_max <= o.leakage_max, kEcgOperatorName,
                        "vf_flutter_leakage_max", o.flutter_leakage_max,
                        "must be at most vf_leakage_max");
  ops::RequireParameter(o.step_s >= 0.25 && o.step_s <= o.window_s, kEcgOperatorName, "vf_window_s",
                        o.window_s, "must be at least quality_block_s");
  return VentricularFibrillationDetector(o);
}

void VentricularFibrillationDetector::Reset(State& s, double fs) const {
  s.sample_rate_hz = fs;
  std::fill(std::begin(s.z), std::end(s.z), 0.0);
  s.window.assign(static_cast<size_t>(options_.window_s * fs + 0.5), 0.0f);
  s.written = 0;
  s.anchor = {};
  s.since_step = 0;
}

void VentricularFibrillationDetector::FilterInto(State& s, std::span<const float> x) const {
  // Coefficients are cheap to derive and depend only on the rate; recomputing them keeps the
  // state free of derived data (the snapshot stays small and unambiguous).
  const double fs = s.sample_rate_hz;
  static thread_local double cached_fs = 0;
  static thread_local Biquad hp{}, lp{};
  if (cached_fs != fs) {
    hp = ButterworthHighPass(kHighPassHz, fs);
    lp = ButterworthLowPass(std::min(kLowPassHz, 0.4 * fs), fs);
    cached_fs = fs;
  }
  const Biquad h = hp, l = lp;
  const size_t size = s.window.size();
  size_t pos = static_cast<size_t>(s.written % size);
  double z[4] = {s.z[0], s.z[1], s.z[2], s.z[3]};
  for (float v : x) {
    if (v != v) v = 0;
    s.window[pos] = static_cast<float>(Run(l, z + 2, Run(h, z, v)));
    if (++pos == size) pos = 0;
  }
  std::copy(std::begin(z), std::end(z), std::begin(s.z));
  s.written += x.size();
  s.since_step += x.size();
}

float VentricularFibrillationDetector::FilteredPeakToPeak(const State& s, ops::TimeUs from_us,
                                                          ops::TimeUs to_us) {
  if (s.window.empty() || s.written == 0 || s.sample_rate_hz <= 0) return NAN;
  const auto index = [&s](ops::TimeUs t) { return s.anchor.IndexOf(t, s.sample_rate_hz); };
  const auto newest = static_cast<int64_t>(s.written) - 1;
  const auto oldest = std::max<int64_t>(0, newest - static_cast<int64_t>(s.window.size()) + 1);
  const int64_t a = std::max(index(from_us), oldest);
  const int64_t b = std::min(index(to_us), newest);
  if (a > b) return NAN;
  float lo = INFINITY, hi = -INFINITY;
  const size_t size = s.window.size();
  for (size_t i = static_cast<size_t>(a) % size, left = static_cast<size_t>(b - a) + 1; left > 0;
       --left) {
    const float v = s.window[i];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    if (++i == size) i = 0;
  }
  return hi - lo;
}

VfWindowFeatures VentricularFibrillationDetector::Features(const std::vector<float>& x, double fs) {
  VfWindowFeatures f;
  const size_t n = x.size();
  if (n < 8) return f;

  // Amplitude as the 5-95 % range: robust to a single spike. Two selections rather than a sort:
  // this runs once a step for every patient, and a sort of the window was the costliest thing
  // in the whole ECG chain.
  const size_t k_hi = n * 95 / 100, k_lo = n * 5 / 100;
  f.amplitude_mv = filters::OrderStatistic(x, k_hi) - filters::OrderStatistic(x, k_lo);

  // The two sums of the VF filter and the box counting are sequential double additions: each
  // loop waits on its sums, so independent work (the extremes, the boxes) shares their loops.
  // VF filter leakage. Half period N of the mean frequency from mean |x| and mean |dx|.
  double sum_abs = std::fabs(x[0]), sum_diff = 0;
  float lo = x[0], hi = x[0];
  for (size_t i = 1; i < n; ++i) {
    sum_abs += std::fabs(x[i]);
    sum_diff += std::fabs(x[i] - x[i - 1]);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  size_t half = 0;
  if (sum_diff > 0) {
    half = static_cast<size_t>(std::clamp(std::floor(std::numbers::pi * sum_abs / sum_diff + 0.5),
                                          1.0, static_cast<double>(n / 2)));
  }

  // Phase-space box counting over the window normalised to [0, 1]: the delay plot's boxes.
  const auto delay = static_cast<size_t>(kDelayS * fs + 0.5);
  const bool count_boxes = hi > lo && delay < n;
  std::array<uint8_t, kGrid * kGrid> boxes{};
  int filled = 0;
  static thread_local std::vector<int> bins;
  if (count_boxes) {
    const double scale = (kGrid - 1e-9) / (hi - lo);
    bins.resize(n);
    for (size_t i = 0; i < n; ++i) bins[i] = static_cast<int>((x[i] - lo) * scale);
  }
  const size_t leakage_from = half > 0 ? half : n;
  const size_t boxes_from = count_boxes ? delay : n;
  double num = 0, den = 0;
  for (size_t i = std::min(leakage_from, boxes_from); i < n; ++i) {
    if (i >= leakage_from) {
      num += std::fabs(x[i] + x[i - half]);
      den += std::fabs(x[i]) + std::fabs(x[i - half]);
    }
    if (i >= boxes_from) {
      auto& box = boxes[static_cast<size_t>(bins[i - delay] * kGrid + bins[i])];
      filled += !box;
      box = 1;
    }
  }
  if (half > 0) f.leakage = den > 0 ? num / den : 1;
  if (count_boxes) f.boxes = static_cast<double>(filled) / (kGrid * kGrid);
  return f;
}

ops::Explanation VentricularFibrillationDetector::Explain(const State& s) const {
  ops::Explanation why;
  why.algorithm = "ecg.vf.leakage_boxcount";
  why.version = "1.0.0";
  why.measures = {
      {"vf_filter_leakage", s.last.leakage, "1"},
      {"phase_space_boxes", s.last.boxes, "1"},
      {"amplitude", s.last.amplitude_mv, "mV"},
      {"mean_leakage", s.consecutive ? s.leakage_sum / s.consecutive : s.last.leakage, "1"}};
  why.limits = {{"vf_leakage_max", options_.leakage_max, "1", "<="},
                {"vf_boxes_min", options_.boxes_min, "1", ">="},
                {"vf_min_amplitude", options_.min_amplitude_mv, "mV", ">="},
                {"vf_min_duration", options_.min_s, "s", ">="},
                {"vfl_leakage_max", options_.flutter_leakage_max, "1", "<="}};
  why.rule =
      fmt::format("fibrillatory waveform (VF filter leakage and phase-space filling) for >= {:g} s",
                  options_.min_s);
  why.note = "Kuo & Dillman 1978 VF filter; Amann et al. 2007 time-delay box counting";
  return why;
}

void VentricularFibrillationDetector::Close(State& s, ops::Events& out) const {
  const auto start = s.tracker.run_start_us;
  const auto end = s.tracker.last_seen_us;
  if (s.tracker.Stop() == EpisodeTracker::Change::kClosed) {
    out.push_back(MakeEpisode(s.open_kind, ops::Episode::Phase::kClosed, start, end, Explain(s)));
  }
  s.consecutive = 0;
  s.leakage_sum = 0;
}

void VentricularFibrillationDetector::Step(State& s, bool usable, ops::Events& out,
                                           std::vector<VfWindowFeatures>* windows) const {
  const auto end_us = s.next_sample_us;
  const auto start_us = end_us - ops::FromSeconds(options_.window_s);
  VfWindowFeatures f;
  // The features decide only usable windows (an organised rhythm, noise or lead off is never
  // called VF), so they are computed only for those: in sinus rhythm, most of the time for most
  // patients, the detector then costs its filter and nothing else.
  if (usable && s.written >= s.window.size()) {
    // The ring in time order: oldest (at the write position) to the end, then the start.
    const auto head = static_cast<std::ptrdiff_t>(s.written % s.window.size());
    std::vector<float> x(s.window.begin() + head, s.window.end());
    x.insert(x.end(), s.window.begin(), s.window.begin() + head);
    f = Features(x, s.sample_rate_hz);
  }
  {
    // Steepest slope of the newest step: lets the rhythm stage tell a silent signal (asystole)
    // from QRS complexes the beat detector missed.
    const auto step =
        std::min<uint64_t>(static_cast<uint64_t>(options_.step_s * s.sample_rate_hz + 0.5),
                           std::min<uint64_t>(s.written, s.window.size()) - 1);
    // The step's samples and the one before it, oldest first, out of the ring in two runs.
    const size_t size = s.window.size();
    static thread_local std::vector<float> recent, slopes;
    recent.resize(static_cast<size_t>(step) + 1);
    const size_t oldest = static_cast<size_t>((s.written - 1 - step) % size);
    const size_t head = std::min(recent.size(), size - oldest);
    std::copy_n(s.window.begin() + static_cast<std::ptrdiff_t>(oldest), head, recent.begin());
    std::copy_n(s.window.begin(), recent.size() - head,
                recent.begin() + static_cast<std::ptrdiff_t>(head));
    // |difference| of floats is a float: its maximum converts to the same double as the
    // maximum of the converted values. Each loop and extreme runs in vector registers.
    slopes.resize(recent.size());
    slopes[0] = 0;
    for (size_t k = 1; k < recent.size(); ++k) slopes[k] = std::fabs(recent[k] - recent[k - 1]);
    const float slope = filters::Extremes(slopes).second;
    const auto step_samples = std::span<const float>(recent).subspan(1);
    auto [lo, hi] =
        step_samples.empty() ? std::pair{recent[0], recent[0]} : filters::Extremes(step_samples);
    if (lo == hi) {
      // Zeros of both signs tie: take the one the walk back from the newest sample finds, as
      // snapshots have always recorded it.
      lo = hi = recent.back();
      for (size_t k = recent.size() - 1; k >= 1; --k) {
        lo = std::min(lo, recent[k]);
        hi = std::max(hi, recent[k]);
      }
    }
    f.step_max_slope_mv_s = static_cast<double>(slope) * s.sample_rate_hz;
    f.step_p2p_mv = hi - lo;
  }
  f.start_us = start_us;
  f.end_us = end_us;
  f.usable = usable;
  f.fibrillatory = usable && f.leakage <= options_.leakage_max && f.boxes >= options_.boxes_min &&
                   f.amplitude_mv >= options_.min_amplitude_mv;
  if (usable) s.last = f;  // the explanation shows the last window that was judged
  if (windows) windows->push_back(f);

  if (f.fibrillatory) {
    ++s.consecutive;
    s.leakage_sum += f.leakage;
    s.last_fibrillatory_end_us = end_us;
    // The newest step of the window is what this window adds; its middle is the end estimate.
    const auto seen_until = end_us - ops::FromSeconds(options_.step_s / 2);
    // The tracker only records the run here; confirmation also needs confirm_windows below.
    s.tracker.Present(start_us, seen_until, std::numeric_limits<ops::TimeUs>::max());
    if (!s.tracker.open && s.consecutive >= options_.confirm_windows &&
        seen_until - s.tracker.run_start_us >= ops::FromSeconds(options_.min_s)) {
      s.tracker.open = true;
      s.open_kind = s.leakage_sum / s.consecutive <= options_.flutter_leakage_max
                        ? ops::EpisodeKind::kVentricularFlutter
                        : ops::EpisodeKind::kVentricularFibrillation;
      out.push_back(MakeEpisode(s.open_kind, ops::Episode::Phase::kOpened, s.tracker.run_start_us,
                                0, Explain(s)));
    }
  } else if (!s.tracker.open) {
    // Not yet confirmed: a single non-fibrillatory window restarts the count.
    s.tracker.Stop();
    s.consecutive = 0;
    s.leakage_sum = 0;
  } else if (end_us - s.tracker.last_seen_us >= ops::FromSeconds(options_.clear_s)) {
    Close(s, out);
  }
}

void VentricularFibrillationDetector::OnGap(State& s, ops::Events& out) const {
  Close(s, out);
  const double fs = s.sample_rate_hz;
  if (fs > 0) Reset(s, fs);
}

void VentricularFibrillationDetector::Finish(State& s, ops::Events& out) const {
  Close(s, out);
}

void VentricularFibrillationDetector::State::Save(ops::SnapshotWriter& w) const {
  w.Put<double>(sample_rate_hz);
  for (double v : z) w.Put<double>(v);
  w.PutSpan<float>(window);
  w.Put<uint64_t>(written);
  anchor.Save(w);
  w.Put<uint64_t>(since_step);
  w.Put<int64_t>(next_sample_us);
  w.Put<int32_t>(consecutive);
  w.Put<double>(leakage_sum);
  tracker.Save(w);
  w.Put<uint8_t>(static_cast<uint8_t>(open_kind));
  w.Put<int64_t>(last_fibrillatory_end_us);
  w.Put<double>(last.leakage);
  w.Put<double>(last.boxes);
  w.Put<double>(last.amplitude_mv);
}

void VentricularFibrillationDetector::State::Load(ops::SnapshotReader& r) {
  sample_rate_hz = r.Get<double>();
  // Reset() sizes the window by the rate: a corrupt one (1e253 Hz) must not reach it.
  if (!(sample_rate_hz == 0 || (sample_rate_hz > 0 && sample_rate_hz <= kMaxRateHz))) {
    throw ops::SnapshotError("vf detector: bad sample rate");
  }
  for (double& v : z) v = r.Get<double>();
  window = r.GetVector<float>();
  written = r.Get<uint64_t>();
  anchor.Load(r);
  since_step = r.Get<uint64_t>();
  next_sample_us = r.Get<int64_t>();
  consecutive = r.Get<int32_t>();
  leakage_sum = r.Get<double>();
  tracker.Load(r);
  const auto kind = r.Get<uint8_t>();
  if (kind != static_cast<uint8_t>(ops::EpisodeKind::kVentricularFibrillation) &&
      kind != static_cast<uint8_t>(ops::EpisodeKind::kVentricularFlutter)) {
    throw ops::SnapshotError("vf detector: bad episode kind");
  }
  open_kind = static_cast<ops::EpisodeKind>(kind);
  last_fibrillatory_end_us = r.Get<int64_t>();
  last.leakage = r.Get<double>();
  last.boxes = r.Get<double>();
  last.amplitude_mv = r.Get<double>();
  // What FilterInto and Reset can have written: finite filter memories and window samples
  // (OrderStatistic cannot rank a NaN), and a window exactly when the rate is known (the ring
  // index is taken modulo its size).
  bool finite =
      std::all_of(std::begin(z), std::end(z), [](double v) { return std::isfinite(v); }) &&
      std::all_of(window.begin(), window.end(), [](float v) { return std::isfinite(v); });
  if (!finite || (sample_rate_hz > 0) != !window.empty()) {
    throw ops::SnapshotError("vf detector: window inconsistent with its rate or not finite");
  }
}

}  // namespace vigil::ecg
