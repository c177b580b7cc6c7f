#include "operators/ecg/ecg_signal_quality.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/filters/order_statistic.h"

namespace vigil::ecg {

namespace {
constexpr ops::EpisodeKind kKinds[4] = {
    ops::EpisodeKind::kEcgLeadOff, ops::EpisodeKind::kEcgFlatLine, ops::EpisodeKind::kEcgSaturation,
    ops::EpisodeKind::kEcgNoise};
constexpr uint8_t kBits[4] = {kQualityLeadOff, kQualityFlat, kQualitySaturated, kQualityNoisy};
constexpr size_t kRecentBlocks = 32;
constexpr double kMaxRateHz = 2000;  // snapshot sanity bound (chunks come at 125-1000 Hz)
// Median |x[n] - 2x[n-1] + x[n-2]| of white noise with standard deviation s is
// 0.6745 * sqrt(6) * s.
constexpr double kMedianSecondDiffPerSigma = 0.6745 * 2.449489742783178;

}  // namespace

const ops::ParameterTable<SignalQualityOptions>& SignalQualityParameters() {
  using O = SignalQualityOptions;
  static const ops::ParameterTable<O> table = {
      {"quality_block_s", &O::block_s, 0.25, 5, "s", "blocks the raw signal is judged in"},
      {"quality_lead_off_nan_fraction", &O::lead_off_nan_fraction, 0.01, 1, "fraction",
       "invalid (NaN) samples in a block that mean lead off"},
      {"quality_flat_p2p_mv", &O::flat_p2p_mv, 0, 1, "mV",
       "peak-to-peak below which a block is flat"},
      {"quality_saturation_run_s", &O::saturation_run_s, 0.01, 1, "s",
       "run of identical samples at a block's extreme that is clipping"},
      {"quality_noise_hf_rms_mv", &O::noise_hf_rms_mv, 0.001, 10, "mV",
       "robust high-frequency noise level above which a block is noisy"},
      {"quality_noise_p2p_mv", &O::noise_p2p_mv, 0.5, 100, "mV",
       "peak-to-peak above which a block is motion artefact"},
      {"quality_min_s", &O::min_s, 0, 60, "s", "how long a condition must hold to open"},
      {"quality_clear_s", &O::clear_s, 0, 60, "s", "how long it must be absent to close"},
  };
  return table;
}

EcgSignalQuality EcgSignalQuality::Make(const SignalQualityOptions& o) {
  SignalQualityParameters().Check(kEcgOperatorName, o);
  return EcgSignalQuality(o);
}

uint8_t EcgSignalQuality::Judge(State& s) const {
  const auto& x = s.block;
  // Judged once a block for every patient: scratch buffers are reused, and the block itself
  // is used when it holds no NaN (the usual case).
  static thread_local std::vector<float> without_nan, d2;
  const auto nan =
      static_cast<size_t>(std::count_if(x.begin(), x.end(), [](float v) { return v != v; }));
  if (nan) {
    without_nan.clear();
    for (float v : x) {
      if (v == v) without_nan.push_back(v);
    }
  }
  const std::span<const float> valid =
      nan ? std::span<const float>(without_nan) : std::span<const float>(x);
  s.last_nan_fraction = x.empty() ? 1.0f : static_cast<float>(nan) / static_cast<float>(x.size());
  if (s.device_lead_off || s.last_nan_fraction > options_.lead_off_nan_fraction ||
      valid.size() < 3) {
    return kQualityLeadOff;
  }
  // Equal extremes may differ in the sign of zero from minmax_element's (only for max - min
  // of a block of zeros): it decides then.
  auto [min_v, max_v] = filters::Extremes(valid);
  if (min_v == max_v) {
    const auto [a, b] = std::minmax_element(valid.begin(), valid.end());
    min_v = *a;
    max_v = *b;
  }
  s.last_p2p_mv = max_v - min_v;

  // The decision needs only whether the median of |second difference| exceeds the limit: the
  // median (element m of the sorted values) is above T exactly when at most m values are <= T,
  // one counting pass, fused with the differences. Its value, for the explanation, is selected
  // only when a noise episode may open or close.
  d2.resize(valid.size() - 2);
  const auto limit = static_cast<float>(options_.noise_hf_rms_mv * kMedianSecondDiffPerSigma);
  size_t at_most_limit = 0;
  for (size_t i = 2; i < valid.size(); ++i) {
    const float d = std::fabs(valid[i] - 2 * valid[i - 1] + valid[i - 2]);
    d2[i - 2] = d;
    at_most_limit += d <= limit;
  }
  const size_t m = d2.size() / 2;
  const bool hf_noisy = at_most_limit <= m;
  const bool noisy = hf_noisy || s.last_p2p_mv > options_.noise_p2p_mv;
  if (noisy || s.trackers[3].in_run) {
    std::nth_element(d2.begin(), d2.begin() + static_cast<ptrdiff_t>(m), d2.end());
    s.last_hf_rms_mv = static_cast<float>(d2[m] / kMedianSecondDiffPerSigma);
  } else {
    s.last_hf_rms_mv = NAN;  // not needed: no noise episode can open or close on this block
  }

  if (s.last_p2p_mv < options_.flat_p2p_mv) return kQualityFlat;

  uint8_t flags = 0;
  // Clipping: a run of identical samples at the block's extreme, far from the median. Such a
  // run needs at least `min_run` samples equal to an extreme; blocks without that many (nearly
  // all) skip the run search.
  const auto min_run =
      static_cast<size_t>(std::max(2.0, std::round(options_.saturation_run_s * s.sample_rate_hz)));
  size_t at_max = 0, at_min = 0;
  for (const float v : valid) {
    at_max += v == max_v;
    at_min += v == min_v;
  }
  if (at_max >= min_run || at_min >= min_run) {
    // The median is needed only for such blocks (rarely): computed then.
    const float median = filters::OrderStatistic(valid, valid.size() / 2);
    size_t run = 1;
    for (size_t i = 1; i < valid.size(); ++i) {
      run = valid[i] == valid[i - 1] ? run + 1 : 1;
      if (run >= min_run && (valid[i] == max_v || valid[i] == min_v) &&
          std::fabs(valid[i] - median) > 0.5f * s.last_p2p_mv) {
        flags |= kQualitySaturated;
        break;
      }
    }
  }
  if (noisy) {
    flags |= kQualityNoisy;
  }
  return flags;
}

ops::Explanation EcgSignalQuality::Explain(int which, const State& s) const {
  ops::Explanation why;
  why.algorithm = "ecg.signal_quality";
  why.version = "1.0.0";
  switch (which) {
    case 0:
      why.measures = {{"invalid_fraction", s.last_nan_fraction, "1"},
                      {"device_lead_off", s.device_lead_off ? 1.0 : 0.0, "1"}};
      why.limits = {{"lead_off_nan_fraction", options_.lead_off_nan_fraction, "1", ">"}};
      why.rule = "device reports lead off, or most samples invalid";
      break;
    case 1:
      why.measures = {{"peak_to_peak", s.last_p2p_mv, "mV"}};
      why.limits = {{"flat_p2p", options_.flat_p2p_mv, "mV", "<"}};
      why.rule = "ECG peak-to-peak amplitude below the flat-line limit";
      break;
    case 2:
      why.measures = {{"peak_to_peak", s.last_p2p_mv, "mV"}};
      why.limits = {{"saturation_run", options_.saturation_run_s, "s", ">="}};
      why.rule = "identical samples at the signal's extreme (clipped amplifier)";
      break;
    default:
      why.measures = {{"hf_noise_rms", s.last_hf_rms_mv, "mV"},
                      {"peak_to_peak", s.last_p2p_mv, "mV"}};
      why.limits = {{"noise_hf_rms", options_.noise_hf_rms_mv, "mV", ">"},
                    {"noise_p2p", options_.noise_p2p_mv, "mV", ">"}};
      why.rule = "high-frequency noise or artefact amplitude above its limit";
      break;
  }
  why.limits.push_back({"min_duration", options_.min_s, "s", ">="});
  return why;
}

void EcgSignalQuality::CloseBlock(State& s, ops::TimeUs end_us, std::vector<QualityBlock>& finished,
                                  ops::Events& out) const {
  QualityBlock b{s.block_start_us, end_us, Judge(s)};
  {
    const size_t fifth = s.block.size() / 5;
    double head = 0, tail = 0;
    size_t nh = 0, nt = 0;
    for (size_t k = 0; k < fifth; ++k) {
      const float a = s.block[k], z = s.block[s.block.size() - 1 - k];
      if (std::isfinite(a)) head += a, ++nh;
      if (std::isfinite(z)) tail += z, ++nt;
    }
    if (nh > 0 && nt > 0) {
      b.baseline_shift_mv =
          static_cast<float>(tail / static_cast<double>(nt) - head / static_cast<double>(nh));
    }
  }
  s.block.clear();
  s.block_start_us = end_us;
  s.analysed_until_us = end_us;
  if (b.flags) s.last_unusable_end_us = end_us;
  s.recent.push_back(b);
  while (s.recent.size() > kRecentBlocks) s.recent.pop_front();
  finished.push_back(b);

  const auto min_us = ops::FromSeconds(options_.min_s);
  const auto clear_us = ops::FromSeconds(options_.clear_s);
  for (int k = 0; k < 4; ++k) {
    auto& t = s.trackers[k];
    if (b.flags & kBits[k]) {
      if (t.Present(b.start_us, b.end_us, min_us) == EpisodeTracker::Change::kOpened) {
        out.push_back(
            MakeEpisode(kKinds[k], ops::Episode::Phase::kOpened, t.run_start_us, 0, Explain(k, s)));
      }
    } else {
      const auto start = t.run_start_us, last = t.last_seen_us;
      if (t.Absent(b.end_us, clear_us) == EpisodeTracker::Change::kClosed) {
        out.push_back(
            MakeEpisode(kKinds[k], ops::Episode::Phase::kClosed, start, last, Explain(k, s)));
      }
    }
  }
}

void EcgSignalQuality::Process(State& s, const ops::Chunk& chunk,
                               std::vector<QualityBlock>& finished, ops::Events& out) const {
  if (chunk.values.empty()) return;
  if (s.sample_rate_hz != chunk.sample_rate_hz) {
    s.sample_rate_hz = chunk.sample_rate_hz;
    s.block.clear();
  }
  if (s.block.empty()) s.block_start_us = chunk.first_sample_us;
  const auto per_block =
      static_cast<size_t>(std::max(3.0, std::round(options_.block_s * s.sample_rate_hz)));
  for (size_t i = 0; i < chunk.values.size();) {
    if (s.block.empty()) {
      s.block_start_us =
          ops::SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i));
    }
    const size_t take = std::min(chunk.values.size() - i, per_block - s.block.size());
    s.block.insert(s.block.end(), chunk.values.begin() + static_cast<std::ptrdiff_t>(i),
                   chunk.values.begin() + static_cast<std::ptrdiff_t>(i + take));
    i += take;
    if (s.block.size() == per_block) {
      CloseBlock(
          s, ops::SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i)),
          finished, out);
    }
  }
}

void EcgSignalQuality::OnGap(State& s, ops::TimeUs, ops::TimeUs to_us) const {
  s.block.clear();
  s.analysed_until_us = std::max(s.analysed_until_us, to_us);
  s.last_unusable_end_us = std::max(s.last_unusable_end_us, to_us);
}

void EcgSignalQuality::Finish(State& s, ops::Events& out) const {
  for (int k = 0; k < 4; ++k) {
    auto& t = s.trackers[k];
    const auto start = t.run_start_us, last = t.last_seen_us;
    if (t.Stop() == EpisodeTracker::Change::kClosed) {
      out.push_back(
          MakeEpisode(kKinds[k], ops::Episode::Phase::kClosed, start, last, Explain(k, s)));
    }
  }
}

uint8_t EcgSignalQuality::FlagsAt(const State& s, ops::TimeUs t) {
  for (auto it = s.recent.rbegin(); it != s.recent.rend(); ++it) {
    if (t >= it->start_us && t < it->end_us) return it->flags;
    if (t >= it->end_us) break;
  }
  return 0;
}

void EcgSignalQuality::State::Save(ops::SnapshotWriter& w) const {
  w.Put<double>(sample_rate_hz);
  w.Put<int64_t>(block_start_us);
  w.PutSpan<float>(block);
  w.Put<uint8_t>(device_lead_off);
  w.Put<uint64_t>(recent.size());
  for (const auto& b : recent) {
    w.Put<int64_t>(b.start_us);
    w.Put<int64_t>(b.end_us);
    w.Put<uint8_t>(b.flags);
  }
  w.Put<int64_t>(analysed_until_us);
  w.Put<int64_t>(last_unusable_end_us);
  for (const auto& t : trackers) t.Save(w);
  w.Put<float>(last_p2p_mv);
  w.Put<float>(last_hf_rms_mv);
  w.Put<float>(last_nan_fraction);
}

void EcgSignalQuality::State::Load(ops::SnapshotReader& r) {
  sample_rate_hz = r.Get<double>();
  // Block and run lengths are sized by the rate: a corrupt one must not reach them (as in the
  // VF detector, found by fuzz_snapshot).
  if (!(sample_rate_hz == 0 || (sample_rate_hz > 0 && sample_rate_hz <= kMaxRateHz))) {
    throw ops::SnapshotError("signal quality: bad sample rate");
  }
  block_start_us = r.Get<int64_t>();
  block = r.GetVector<float>();
  device_lead_off = r.Get<uint8_t>() != 0;
  const auto n = r.Get<uint64_t>();
  if (n > kRecentBlocks) throw ops::SnapshotError("signal quality: too many blocks");
  recent.clear();
  for (uint64_t i = 0; i < n; ++i) {
    QualityBlock b;
    b.start_us = r.Get<int64_t>();
    b.end_us = r.Get<int64_t>();
    b.flags = r.Get<uint8_t>();
    recent.push_back(b);
  }
  analysed_until_us = r.Get<int64_t>();
  last_unusable_end_us = r.Get<int64_t>();
  for (auto& t : trackers) t.Load(r);
  last_p2p_mv = r.Get<float>();
  last_hf_rms_mv = r.Get<float>();
  last_nan_fraction = r.Get<float>();
}

}  // namespace vigil::ecg
