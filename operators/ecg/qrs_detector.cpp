#include "operators/ecg/qrs_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"

namespace vigil::ecg {
namespace {

constexpr uint32_t kSnapshotVersion = 1;

int Samples(double seconds, double fs) {
  return std::max(1, static_cast<int>(std::lround(seconds * fs)));
}

// Median of 8 levels, taken at every peak: Batcher's odd-even merge sorting network (19
// compare-exchanges, no data-dependent branches) instead of a general sort. Each step swaps, so
// the result is a permutation of the levels, sorted as std::sort would sort them.
float Median(const std::array<float, 8>& values) {
  static constexpr std::array<std::array<uint8_t, 2>, 19> kNetwork = {{{0, 1},
                                                                       {2, 3},
                                                                       {4, 5},
                                                                       {6, 7},
                                                                       {0, 2},
                                                                       {1, 3},
                                                                       {4, 6},
                                                                       {5, 7},
                                                                       {1, 2},
                                                                       {5, 6},
                                                                       {0, 4},
                                                                       {1, 5},
                                                                       {2, 6},
                                                                       {3, 7},
                                                                       {2, 4},
                                                                       {3, 5},
                                                                       {1, 2},
                                                                       {3, 4},
                                                                       {5, 6}}};
  std::array<float, 8> v = values;
  // Unrolled, the indices are constants: each step becomes one minss and one maxss.
#pragma GCC unroll 19
  for (const auto& [i, j] : kNetwork) {
    const float a = v[i], b = v[j];
    const bool swap = b < a;
    v[i] = swap ? b : a;
    v[j] = swap ? a : b;
  }
  return 0.5f * (v[3] + v[4]);
}

}  // namespace

const ops::ParameterTable<QrsOptions>& QrsParameters() {
  using O = QrsOptions;
  static const ops::ParameterTable<O> table = {
      {"notch_hz", &O::notch_hz, 40, 70, "Hz", "mains notch (50 or 60); 0: off", 0},
      {"notch_q", &O::notch_q, 1, 100, "", "quality factor of the notch"},
      {"baseline_hz", &O::baseline_hz, 0, 2, "Hz",
       "corner of the baseline high-pass (Butterworth); 0: off"},
      {"lowpass_hz", &O::lowpass_hz, 20, 475, "Hz",
       "corner of the low-pass (lowered at low sampling rates); 0: off", 0},
      {"band_low_hz", &O::band_low_hz, 1, 20, "Hz", "detection band-pass, low corner"},
      {"band_high_hz", &O::band_high_hz, 3, 40, "Hz",
       "detection band-pass, high corner; at least band_low_hz + 2"},
      {"integration_s", &O::integration_s, 0.03, 0.2, "s",
       "moving-window integration (about a QRS width; Pan & Tompkins: 80 ms)"},
      {"peak_hold_s", &O::peak_hold_s, 0.02, 0.2, "s", "how long a peak is held to be the peak"},
      {"threshold_fraction", &O::threshold_fraction, 0.05, 0.9, "",
       "detection threshold between the noise and QRS levels (Hamilton & Tompkins)"},
      {"refractory_s", &O::refractory_s, 0.1, 0.4, "s", "no second QRS this soon"},
      {"t_wave_s", &O::t_wave_s, 0.1, 0.6, "s",
       "a peak this soon with half the slope is a T wave; at least refractory_s"},
      {"searchback_factor", &O::searchback_factor, 1.1, 3, "",
       "search back for a missed QRS after this many mean RR intervals"},
      {"learning_s", &O::learning_s, 0.5, 10, "s", "levels learnt over the first seconds"},
      {"min_slope_mv_s", &O::min_slope_mv_s, 0, 100, "mV/s",
       "absolute floor of the integral's peak (a flat line has no QRS)"},
      {"replace_ratio", &O::replace_ratio, 1, 10, "",
       "a complex this much larger replaces a held one (a large P wave taken for a beat)"},
  };
  return table;
}

void ValidateQrsOptions(const QrsOptions& o) {
  ops::RequireRange("qrs.sample_rate_hz", o.sample_rate_hz, 125, 1000);
  QrsParameters().Check(kEcgOperatorName, o);
  const double nyquist = o.sample_rate_hz / 2;
  auto require = [&](bool ok, std::string_view key, double value, std::string_view why) {
    ops::RequireParameter(ok, kEcgOperatorName, key, value, why);
  };
  require(o.notch_hz == 0 || o.notch_hz <= nyquist * 0.98, "notch_hz", o.notch_hz,
          fmt::format("must be below {:.0f} Hz at {} Hz", nyquist * 0.98, o.sample_rate_hz));
  require(o.lowpass_hz == 0 || o.lowpass_hz <= nyquist * 0.95, "lowpass_hz", o.lowpass_hz,
          fmt::format("must be below {:.0f} Hz at {} Hz", nyquist * 0.95, o.sample_rate_hz));
  require(o.band_high_hz >= o.band_low_hz + 2 && o.band_high_hz <= nyquist * 0.9, "band_high_hz",
          o.band_high_hz,
          "must be at least band_low_hz + 2 and below the rate's "
          "Nyquist frequency");
  require(o.t_wave_s >= o.refractory_s, "t_wave_s", o.t_wave_s, "must be at least refractory_s");
}

QrsDetector::QrsDetector(const QrsOptions& options) : options_(options) {
  ValidateQrsOptions(options_);
  const double fs = options_.sample_rate_hz;
  filters::Sections cond;
  if (options_.baseline_hz > 0) {
    const auto s = filters::ButterworthHighPass(2, options_.baseline_hz, fs);
    cond.insert(cond.end(), s.begin(), s.end());
  }
  if (options_.notch_hz > 0) {
    const auto s = filters::Notch(options_.notch_hz, options_.notch_q, fs);
    cond.insert(cond.end(), s.begin(), s.end());
  }
  if (options_.lowpass_hz > 0) {
    const auto s = filters::ButterworthLowPass(2, options_.lowpass_hz, fs);
    cond.insert(cond.end(), s.begin(), s.end());
  }
  conditioning_ = filters::BiquadCascade(cond);
  band_ = filters::BiquadCascade(
      filters::ButterworthBandPass(1, options_.band_low_hz, options_.band_high_hz, fs));
  if (band_.sections().size() != kBandSections) {
    throw std::logic_error("QrsDetector: the band-pass design changed its section count");
  }
  // The R peak's energy sits around 10-20 Hz: the delay there is what shifts it.
  cond_delay_ =
      cond.empty() ? 0 : static_cast<int>(std::lround(conditioning_.GroupDelaySamples(15, fs)));
  window_ = Samples(options_.integration_s, fs);
  hold_ = Samples(options_.peak_hold_s, fs);
  refractory_ = Samples(options_.refractory_s, fs);
  t_wave_ = Samples(options_.t_wave_s, fs);
  learning_ = Samples(options_.learning_s, fs);
  // From the integral's peak back to the middle of the QRS in the conditioned signal: the
  // band-pass delay, half a sample for the difference and half the integration window.
  detect_to_centre_ =
      static_cast<int>(std::lround(band_.GroupDelaySamples(10, fs) + 0.5 + (window_ - 1) / 2.0));
  fiducial_before_ = Samples(0.1, fs);
  fiducial_after_ = Samples(0.08, fs);
  slope_scale_ = fs;
  ring_.assign(std::bit_ceil(static_cast<size_t>(8 * fs)), 0.0f);
  mwi_ring_.assign(static_cast<size_t>(window_), 0.0f);
  UpdateSearchBackLimit();
  UpdateThreshold();
}

void QrsDetector::CopyConditioned(int64_t first, std::span<float> out) const {
  const auto last = first + static_cast<int64_t>(out.size());  // exclusive
  const int64_t valid_first = std::clamp(std::max<int64_t>(0, n_ - ring_capacity()), first, last);
  const int64_t valid_last = std::clamp(n_, valid_first, last);
  std::fill(out.begin(), out.begin() + (valid_first - first), 0.0f);
  std::fill(out.begin() + (valid_last - first), out.end(), 0.0f);
  for (int64_t k = valid_first; k < valid_last;) {
    const size_t at = static_cast<size_t>(k) & (ring_.size() - 1);
    const auto run = std::min<int64_t>(valid_last - k, static_cast<int64_t>(ring_.size() - at));
    std::copy_n(ring_.begin() + static_cast<std::ptrdiff_t>(at), run, out.begin() + (k - first));
    k += run;
  }
}

void QrsDetector::UpdateThreshold() {
  // Peaks are decided several times a beat: the medians are taken when the levels change.
  const float q = Median(qrs_levels_);
  const float noise = Median(noise_levels_);
  threshold_ = std::max(static_cast<float>(options_.min_slope_mv_s),
                        noise + static_cast<float>(options_.threshold_fraction) * (q - noise));
}

double QrsDetector::MeanRr() const {
  const int64_t count = std::min<int64_t>(rr_inserted_, kLevels);
  if (count == 0) return 1.0;
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += rr_[static_cast<size_t>(i)];
  return sum / static_cast<double>(count);
}

void QrsDetector::Process(std::span<const float> samples, std::vector<QrsDetection>& out) {
  // The filters run with a compile-time section count so their state stays in registers; the
  // conditioning has at most three sections (baseline, notch, low-pass; each may be disabled).
  switch (conditioning_.sections().size()) {
    case 0:
      return ProcessInBlocks<0>(samples, out);
    case 1:
      return ProcessInBlocks<1>(samples, out);
    case 2:
      return ProcessInBlocks<2>(samples, out);
    case 3:
      return ProcessInBlocks<3>(samples, out);
    default:
      throw std::logic_error("QrsDetector: more conditioning sections than expected");
  }
}

template <size_t kConditioningSections>
void QrsDetector::ProcessInBlocks(std::span<const float> samples, std::vector<QrsDetection>& out) {
  for (size_t first = 0; first < samples.size(); first += kBlock) {
    const auto block = samples.subspan(first, std::min(kBlock, samples.size() - first));
    FilterBlock<kConditioningSections>(block);
    DecideBlock(block.size(), out);
  }
}

template <size_t kConditioningSections>
void QrsDetector::FilterBlock(std::span<const float> samples) {
  filters::FixedBiquadCascade<kConditioningSections> conditioning(conditioning_);
  filters::FixedBiquadCascade<kBandSections> band(band_);
  const float inv_window = 1.0f / static_cast<float>(window_);
  const auto slope_scale = static_cast<float>(slope_scale_);
  // Position in the integration window, advanced without a division per sample.
  size_t wi = static_cast<size_t>(n_ % window_);
  const auto window = static_cast<size_t>(window_);
  // Locals, not members, so that the stores into the block arrays cannot alias them.
  float last_valid = last_valid_, offset = offset_, prev_band = prev_band_;
  bool primed = primed_;
  double mwi_sum = mwi_sum_;
  float* const mwi_ring = mwi_ring_.data();
  // Two passes over the block rather than one: each loop then keeps its values in registers
  // (one loop doing everything spilled to the stack, which cost a tenth of the detector's
  // time), and the filters' dependency chains still overlap within the first.
  // 1. Invalid samples (NaN) hold the last valid value, the first valid one is the offset;
  //    conditioning, then the QRS band.
  for (size_t i = 0; i < samples.size(); ++i) {
    const float x = samples[i];
    if (std::isfinite(x)) {
      if (!primed) {
        offset = x;
        primed = true;
      }
      last_valid = x - offset;
    }
    const auto y = static_cast<float>(conditioning.Step(last_valid));
    block_conditioned_[i] = y;
    block_slope_[i] = static_cast<float>(band.Step(y));  // the band, until pass 2
  }
  // 2. Scaled absolute slope of the band and its moving-window integral.
  for (size_t i = 0; i < samples.size(); ++i) {
    const float b = block_slope_[i];
    const float e = std::abs(b - prev_band) * slope_scale;
    prev_band = b;
    block_slope_[i] = e;
    mwi_sum += static_cast<double>(e) - static_cast<double>(mwi_ring[wi]);
    mwi_ring[wi] = e;
    if (++wi == window) wi = 0;
    block_integral_[i] = static_cast<float>(mwi_sum) * inv_window;
  }
  conditioning.StoreState(conditioning_);
  band.StoreState(band_);
  last_valid_ = last_valid;
  offset_ = offset;
  prev_band_ = prev_band;
  primed_ = primed;
  mwi_sum_ = mwi_sum;
}

void QrsDetector::DecideBlock(size_t count, std::vector<QrsDetection>& out) {
  const size_t mask = ring_.size() - 1;
  for (size_t i = 0; i < count; ++i) {
    ring_[static_cast<size_t>(n_) & mask] = block_conditioned_[i];
    const float e = block_slope_[i];
    const float m = block_integral_[i];
    seg_max_slope_ = std::max(seg_max_slope_, e);
    if (have_cand_) {
      if (m > cand_.height) {
        cand_.height = m;
        cand_.index = n_;
        cand_.slope = seg_max_slope_;
      } else if (m < 0.5f * cand_.height || n_ - cand_.index >= hold_) {
        have_cand_ = false;
        OnPeak(cand_, out);
      }
    } else if (m > mwi_prev_) {  // a rise starts a new candidate peak
      have_cand_ = true;
      seg_max_slope_ = e;
      cand_ = Peak{n_, m, e, 0};
    }
    mwi_prev_ = m;
    if (have_pending_ && n_ - pending_.index >= t_wave_) CommitPending(out);
    if (learning_done_) {
      // Time-driven search-back: no beat for too long and unexamined peaks are waiting.
      if (last_beat_ >= 0 && n_ - last_beat_ > searchback_samples_ &&
          peak_count_ > searched_peak_count_) {
        while (SearchBack(n_ + 1, out)) {
        }
        searched_peak_count_ = peak_count_;
      }
    } else if (n_ + 1 >= learning_) {
      ++n_;
      FinishLearning(out);
      continue;
    }
    ++n_;
  }
}

void QrsDetector::OnPeak(const Peak& peak, std::vector<QrsDetection>& out) {
  Peak& stored = peaks_[static_cast<size_t>(peak_count_ % kPeakHistory)];
  stored = peak;
  ++peak_count_;
  if (!learning_done_) {
    learning_max_ = std::max(learning_max_, peak.height);
    return;
  }
  Decide(stored, out);
}

void QrsDetector::FinishLearning(std::vector<QrsDetection>& out) {
  learning_done_ = true;
  qrs_levels_.fill(learning_max_);
  noise_levels_.fill(0);
  UpdateThreshold();
  // Decide the learning period's peaks now that levels exist (first beats are not lost).
  const int64_t first = std::max<int64_t>(0, peak_count_ - kPeakHistory);
  for (int64_t i = first; i < peak_count_; ++i) {
    Decide(peaks_[static_cast<size_t>(i % kPeakHistory)], out);
  }
  searched_peak_count_ = peak_count_;
}

void QrsDetector::UpdateSearchBackLimit() {
  searchback_samples_ =
      static_cast<int64_t>(options_.searchback_factor * MeanRr() * options_.sample_rate_hz);
}

void QrsDetector::Decide(Peak& peak, std::vector<QrsDetection>& out) {
  if (last_beat_ >= 0 && peak.index - last_beat_ > searchback_samples_) {
    while (SearchBack(peak.index, out)) {
    }
  }
  const float threshold = Threshold();
  if (ReplacesPending(peak) && peak.height > threshold) {
    ReplacePending(peak);
    return;
  }
  if (last_beat_ >= 0 && peak.index - last_beat_ < refractory_) return;  // same complex
  if (peak.height > threshold) {
    const bool t_wave = last_beat_ >= 0 && peak.index - last_beat_ < t_wave_ &&
                        peak.slope < 0.5f * last_beat_slope_;
    if (!t_wave) {
      AcceptBeat(peak, false, out);
      return;
    }
  }
  noise_levels_[static_cast<size_t>(noise_inserted_++ % kLevels)] = peak.height;
  UpdateThreshold();
}

bool QrsDetector::SearchBack(int64_t before_index, std::vector<QrsDetection>& out) {
  const float half = 0.5f * Threshold();
  Peak* best = nullptr;
  const int64_t first = std::max<int64_t>(0, peak_count_ - kPeakHistory);
  const int64_t oldest_usable = n_ - ring_capacity() + fiducial_before_ + detect_to_centre_ + 1;
  for (int64_t i = first; i < peak_count_; ++i) {
    Peak& p = peaks_[static_cast<size_t>(i % kPeakHistory)];
    if (p.kind != 0 || p.index <= last_beat_ + refractory_ || p.index >= before_index) continue;
    if (p.index < oldest_usable || p.height <= half) continue;
    if (p.index - last_beat_ < t_wave_ && p.slope < 0.5f * last_beat_slope_) continue;
    if (!best || p.height > best->height) best = &p;
  }
  if (!best) return false;
  AcceptBeat(*best, true, out);
  return true;
}

bool QrsDetector::ReplacesPending(const Peak& peak) const {
  return have_pending_ && peak.index - pending_.index < t_wave_ &&
         peak.height > static_cast<float>(options_.replace_ratio) * pending_.height &&
         peak.slope > pending_.slope;
}

void QrsDetector::ReplacePending(Peak& peak) {
  // Undo what accepting the pending beat taught the levels, then accept `peak` in its place.
  for (auto& p : peaks_) {
    if (p.index == pending_.index) p.kind = 0;
  }
  qrs_levels_[static_cast<size_t>((qrs_inserted_ - 1) % kLevels)] = peak.height;
  noise_levels_[static_cast<size_t>(noise_inserted_++ % kLevels)] = pending_.height;
  UpdateThreshold();
  if (before_pending_ >= 0) {
    const double rr = static_cast<double>(peak.index - before_pending_) / options_.sample_rate_hz;
    rr_[static_cast<size_t>((rr_inserted_ - 1) % kLevels)] = std::min(rr, 2.0);
    UpdateSearchBackLimit();
  }
  peak.kind = 1;
  pending_ = peak;
  pending_searchback_ = false;
  last_beat_ = peak.index;
  last_beat_slope_ = peak.slope;
}

void QrsDetector::AcceptBeat(Peak& peak, bool searchback, std::vector<QrsDetection>& out) {
  if (have_pending_) CommitPending(out);
  peak.kind = 1;
  qrs_levels_[static_cast<size_t>(qrs_inserted_++ % kLevels)] = peak.height;
  UpdateThreshold();
  if (last_beat_ >= 0) {
    // Long pauses would stretch the search-back interval for many beats: clamp.
    const double rr = static_cast<double>(peak.index - last_beat_) / options_.sample_rate_hz;
    rr_[static_cast<size_t>(rr_inserted_++ % kLevels)] = std::min(rr, 2.0);
    UpdateSearchBackLimit();
  }
  before_pending_ = last_beat_;
  last_beat_ = peak.index;
  last_beat_slope_ = peak.slope;
  have_pending_ = true;
  pending_ = peak;
  pending_searchback_ = searchback;
}

void QrsDetector::CommitPending(std::vector<QrsDetection>& out) {
  have_pending_ = false;
  const Peak& peak = pending_;
  const int64_t centre = peak.index - detect_to_centre_;
  const int64_t lo = std::max({centre - fiducial_before_, n_ - ring_capacity() + 1, int64_t{0}});
  const int64_t hi = std::min(centre + fiducial_after_, n_);
  int64_t best = std::clamp(centre, lo, hi);
  float best_abs = -1;
  for (int64_t k = lo; k <= hi; ++k) {
    const float a = std::abs(ring_[static_cast<size_t>(k) & (ring_.size() - 1)]);
    if (a > best_abs) {
      best_abs = a;
      best = k;
    }
  }
  QrsDetection d;
  d.conditioned_index = best;
  d.sample = std::max<int64_t>(0, best - cond_delay_);
  d.amplitude_mv = ring_[static_cast<size_t>(best) & (ring_.size() - 1)];
  d.peak_height = peak.height;
  d.searchback = pending_searchback_;
  out.push_back(d);
}

void QrsDetector::Flush(std::vector<QrsDetection>& out) {
  if (have_pending_) CommitPending(out);
}

void QrsDetector::Restart(std::vector<QrsDetection>& out) {
  Flush(out);
  conditioning_.Reset();
  band_.Reset();
  prev_band_ = 0;
  primed_ = false;
  last_valid_ = 0;
  std::fill(mwi_ring_.begin(), mwi_ring_.end(), 0.0f);
  mwi_sum_ = 0;
  mwi_prev_ = 0;
  have_cand_ = false;
  seg_max_slope_ = 0;
  last_beat_ = -1;
  last_beat_slope_ = 0;
  searched_peak_count_ = peak_count_;
  for (auto& p : peaks_) p.kind = 1;  // nothing before the gap may be searched back
}

void QrsDetector::Save(ops::SnapshotWriter& w) const {
  w.Put<uint32_t>(kSnapshotVersion);
  w.Put<double>(options_.sample_rate_hz);
  w.Put<int32_t>(window_);
  w.PutSpan<double>(conditioning_.SaveState());
  w.PutSpan<double>(band_.SaveState());
  w.Put<int64_t>(n_);
  w.Put<float>(last_valid_);
  w.Put<float>(offset_);
  w.Put<uint8_t>(primed_);
  w.Put<float>(prev_band_);
  w.PutSpan<float>(ring_);
  w.PutSpan<float>(mwi_ring_);
  w.Put<double>(mwi_sum_);
  w.Put<float>(mwi_prev_);
  w.Put<uint8_t>(have_cand_);
  w.Put<int64_t>(cand_.index);
  w.Put<float>(cand_.height);
  w.Put<float>(cand_.slope);
  w.Put<float>(seg_max_slope_);
  for (const auto& p : peaks_) {
    w.Put<int64_t>(p.index);
    w.Put<float>(p.height);
    w.Put<float>(p.slope);
    w.Put<uint8_t>(p.kind);
  }
  w.Put<int64_t>(peak_count_);
  w.Put<int64_t>(searched_peak_count_);
  w.PutSpan<float>(qrs_levels_);
  w.PutSpan<float>(noise_levels_);
  w.Put<int64_t>(qrs_inserted_);
  w.Put<int64_t>(noise_inserted_);
  w.PutSpan<double>(rr_);
  w.Put<int64_t>(rr_inserted_);
  w.Put<int64_t>(last_beat_);
  w.Put<float>(last_beat_slope_);
  w.Put<uint8_t>(have_pending_);
  w.Put<int64_t>(pending_.index);
  w.Put<float>(pending_.height);
  w.Put<float>(pending_.slope);
  w.Put<uint8_t>(pending_searchback_);
  w.Put<int64_t>(before_pending_);
  w.Put<uint8_t>(learning_done_);
  w.Put<float>(learning_max_);
}

void QrsDetector::Load(ops::SnapshotReader& r) {
  ops::ReadVersion(r, "qrs", kSnapshotVersion);
  if (r.Get<double>() != options_.sample_rate_hz || r.Get<int32_t>() != window_) {
    throw ops::SnapshotError("qrs: snapshot of a detector with other options");
  }
  // Decode into a copy so a failure leaves this detector unchanged.
  QrsDetector d = *this;
  auto check = [](size_t got, size_t want, const char* what) {
    if (got != want) {
      throw ops::SnapshotError(fmt::format("qrs: {} has {} values, want {}", what, got, want));
    }
  };
  const auto cond = r.GetVector<double>();
  check(cond.size(), conditioning_.SaveState().size(), "conditioning state");
  d.conditioning_.LoadState(cond);
  const auto band = r.GetVector<double>();
  check(band.size(), band_.SaveState().size(), "band-pass state");
  d.band_.LoadState(band);
  d.n_ = r.Get<int64_t>();
  d.last_valid_ = r.Get<float>();
  d.offset_ = r.Get<float>();
  d.primed_ = r.Get<uint8_t>() != 0;
  d.prev_band_ = r.Get<float>();
  d.ring_ = r.GetVector<float>();
  check(d.ring_.size(), ring_.size(), "ring");
  d.mwi_ring_ = r.GetVector<float>();
  check(d.mwi_ring_.size(), mwi_ring_.size(), "integration window");
  d.mwi_sum_ = r.Get<double>();
  d.mwi_prev_ = r.Get<float>();
  d.have_cand_ = r.Get<uint8_t>() != 0;
  d.cand_.index = r.Get<int64_t>();
  d.cand_.height = r.Get<float>();
  d.cand_.slope = r.Get<float>();
  d.seg_max_slope_ = r.Get<float>();
  for (auto& p : d.peaks_) {
    p.index = r.Get<int64_t>();
    p.height = r.Get<float>();
    p.slope = r.Get<float>();
    p.kind = r.Get<uint8_t>();
  }
  d.peak_count_ = r.Get<int64_t>();
  d.searched_peak_count_ = r.Get<int64_t>();
  const auto q = r.GetVector<float>();
  check(q.size(), kLevels, "qrs levels");
  std::copy(q.begin(), q.end(), d.qrs_levels_.begin());
  const auto nl = r.GetVector<float>();
  check(nl.size(), kLevels, "noise levels");
  std::copy(nl.begin(), nl.end(), d.noise_levels_.begin());
  d.qrs_inserted_ = r.Get<int64_t>();
  d.noise_inserted_ = r.Get<int64_t>();
  d.UpdateThreshold();
  const auto rr = r.GetVector<double>();
  check(rr.size(), kLevels, "rr");
  std::copy(rr.begin(), rr.end(), d.rr_.begin());
  d.rr_inserted_ = r.Get<int64_t>();
  // What Process can have written: counts from zero, RR intervals clamped to [0, 2] s. Other
  // values are a corrupt snapshot (an RR of 1e244 s made the search-back limit overflow).
  for (double v : rr) {
    if (!(v >= 0 && v <= 2.0)) throw ops::SnapshotError(fmt::format("qrs: rr interval {} s", v));
  }
  if (d.n_ < 0 || d.peak_count_ < 0 || d.searched_peak_count_ < 0 || d.qrs_inserted_ < 0 ||
      d.noise_inserted_ < 0 || d.rr_inserted_ < 0) {
    throw ops::SnapshotError("qrs: negative count");
  }
  // The conditioned signal is finite (Process replaces invalid samples): the beat classifier
  // ranks windows of it (OrderStatistic cannot rank a NaN).
  const auto finite = [](const auto& values) {
    return std::all_of(values.begin(), values.end(), [](auto v) { return std::isfinite(v); });
  };
  if (!finite(d.ring_) || !finite(d.mwi_ring_) || !finite(cond) || !finite(band)) {
    throw ops::SnapshotError("qrs: signal ring or filter state not finite");
  }
  d.UpdateSearchBackLimit();
  d.last_beat_ = r.Get<int64_t>();
  d.last_beat_slope_ = r.Get<float>();
  d.have_pending_ = r.Get<uint8_t>() != 0;
  d.pending_.index = r.Get<int64_t>();
  d.pending_.height = r.Get<float>();
  d.pending_.slope = r.Get<float>();
  d.pending_.kind = 1;
  d.pending_searchback_ = r.Get<uint8_t>() != 0;
  d.before_pending_ = r.Get<int64_t>();
  d.learning_done_ = r.Get<uint8_t>() != 0;
  d.learning_max_ = r.Get<float>();
  // Sample indices lie in the stream seen so far (-1 = none), which no real stream makes
  // longer than 2^53 samples: differences of two of them (Decide) then cannot overflow.
  const auto in_stream = [&](int64_t i) { return i >= -1 && i <= d.n_; };
  bool indices = d.n_ <= (int64_t{1} << 53) && in_stream(d.cand_.index) &&
                 in_stream(d.last_beat_) && in_stream(d.pending_.index) &&
                 in_stream(d.before_pending_);
  for (const auto& p : d.peaks_) indices = indices && in_stream(p.index);
  if (!indices) throw ops::SnapshotError("qrs: sample index beyond the stream");
  *this = std::move(d);
}

}  // namespace vigil::ecg
