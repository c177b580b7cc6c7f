#include "operators/ecg/beat_classifier.h"

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "operators/core/options.h"

namespace vigil::ecg {
namespace {

constexpr uint32_t kSnapshotVersion = 1;
constexpr float kTemplateRate = 1.0f / 16;

int Samples(double seconds, double fs) {
  return std::max(1, static_cast<int>(std::lround(seconds * fs)));
}

}  // namespace

void ValidateBeatClassifierOptions(const BeatClassifierOptions& o, std::string_view prefix) {
  auto field = [&](const char* name) { return fmt::format("{}{}", prefix, name); };
  ops::RequireRange(field("learning_beats"), o.learning_beats, 3, 50);
  ops::RequireRange(field("match_corr"), o.match_corr, 0.5, 0.999);
  ops::RequireRange(field("v_corr"), o.v_corr, 0.1, o.match_corr);
  ops::RequireRange(field("wide_qrs_s"), o.wide_qrs_s, 0.08, 0.2);
  ops::RequireRange(field("wide_ratio"), o.wide_ratio, 1.05, 3);
  ops::RequireRange(field("amplitude_ratio"), o.amplitude_ratio, 1.05, 5);
  ops::RequireRange(field("premature_ratio"), o.premature_ratio, 0.5, 0.99);
}

BeatClassifier::BeatClassifier(const BeatClassifierOptions& options, double fs)
    : options_(options), fs_(fs) {
  ValidateBeatClassifierOptions(options_);
  half_ = Samples(0.2, fs);
  qrs_half_ = Samples(0.1, fs);
  shift_ = Samples(0.02, fs);
  smooth_ = Samples(0.01, fs);
}

std::vector<float> BeatClassifier::Prepare(std::span<const float> window) const {
  // Baseline = median of the window (most of +-200 ms around a QRS is near the isoelectric
  // level), robust to the complex itself.
  std::vector<float> beat(window.begin(), window.end());
  std::vector<float> tmp = beat;
  std::nth_element(tmp.begin(), tmp.begin() + static_cast<std::ptrdiff_t>(tmp.size() / 2),
                   tmp.end());
  const float base = tmp[tmp.size() / 2];
  for (auto& v : beat) v -= base;
  return beat;
}

float BeatClassifier::Width(std::span<const float> beat) const {
  // Smoothed absolute slope; the QRS is where it stays above 20 % of its maximum near the
  // fiducial point.
  const int n = static_cast<int>(beat.size());
  std::vector<float> slope(static_cast<size_t>(n), 0.0f);
  for (int i = 1; i < n; ++i) slope[static_cast<size_t>(i)] = std::abs(beat[static_cast<size_t>(i)] - beat[static_cast<size_t>(i - 1)]);
  std::vector<float> env(static_cast<size_t>(n), 0.0f);
  float run = 0;
  for (int i = 0; i < n; ++i) {
    run += slope[static_cast<size_t>(i)];
    if (i >= smooth_) run -= slope[static_cast<size_t>(i - smooth_)];
    env[static_cast<size_t>(i)] = run;
  }
  // env[i] covers samples (i - smooth_, i]: centre it.
  const int lag = smooth_ / 2;
  const int centre = half_;
  const int near = Samples(0.06, fs_);
  int best = centre;
  for (int i = centre - near; i <= centre + near; ++i) {
    const int k = std::clamp(i + lag, 0, n - 1);
    if (env[static_cast<size_t>(k)] > env[static_cast<size_t>(std::clamp(best + lag, 0, n - 1))]) best = i;
  }
  const float peak = env[static_cast<size_t>(std::clamp(best + lag, 0, n - 1))];
  if (peak <= 0) return 0;
  const float thr = 0.2f * peak;
  const int limit = Samples(0.15, fs_);
  int left = best, right = best;
  while (left > centre - limit && env[static_cast<size_t>(std::clamp(left - 1 + lag, 0, n - 1))] > thr) --left;
  while (right < centre + limit && env[static_cast<size_t>(std::clamp(right + 1 + lag, 0, n - 1))] > thr) ++right;
  return static_cast<float>((right - left + 1) / fs_);
}

float BeatClassifier::BestCorrelation(std::span<const float> a, std::span<const float> t) const {
  // Pearson correlation of a's QRS part (shifted by -shift..shift) with t's QRS part.
  const int len = 2 * qrs_half_ + 1;
  const Eigen::Map<const Eigen::ArrayXf> tq(t.data() + half_ - qrs_half_, len);
  const Eigen::ArrayXf tc = tq - tq.mean();
  const float tn = std::sqrt(tc.square().sum());
  float best = -1;
  for (int s = -shift_; s <= shift_; ++s) {
    const Eigen::Map<const Eigen::ArrayXf> aq(a.data() + half_ - qrs_half_ + s, len);
    const Eigen::ArrayXf ac = aq - aq.mean();
    const float an = std::sqrt(ac.square().sum());
    if (an <= 0 || tn <= 0) continue;
    best = std::max(best, (ac * tc).sum() / (an * tn));
  }
  return best;
}

float BeatClassifier::PeakToPeak(std::span<const float> beat) const {
  const auto q = beat.subspan(static_cast<size_t>(half_ - qrs_half_),
                              static_cast<size_t>(2 * qrs_half_ + 1));
  const auto [lo, hi] = std::minmax_element(q.begin(), q.end());
  return *hi - *lo;
}

void BeatClassifier::BuildTemplate() {
  // The most typical held beat (highest median correlation with the others) and the beats
  // like it form the first template: a first beat that happens to be ectopic does not.
  const size_t n = held_.size();
  size_t best = 0;
  float best_score = -2;
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> c;
    for (size_t j = 0; j < n; ++j) {
      if (j != i) c.push_back(BestCorrelation(held_[j].beat, held_[i].beat));
    }
    std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(c.size() / 2), c.end());
    if (c[c.size() / 2] > best_score) {
      best_score = c[c.size() / 2];
      best = i;
    }
  }
  std::vector<float> sum(held_[best].beat.size(), 0.0f);
  int count = 0;
  for (size_t j = 0; j < n; ++j) {
    if (j == best || BestCorrelation(held_[j].beat, held_[best].beat) >= options_.match_corr) {
      for (size_t k = 0; k < sum.size(); ++k) sum[k] += held_[j].beat[k];
      ++count;
    }
  }
  for (auto& v : sum) v /= static_cast<float>(count);
  template_ = std::move(sum);
  template_width_ = Width(template_);
  template_p2p_ = PeakToPeak(template_);
}

ClassifiedBeat BeatClassifier::Classify(const Held& h) {
  ClassifiedBeat c;
  c.id = h.id;
  BeatFeatures& f = c.features;
  f.correlation = BestCorrelation(h.beat, template_);
  f.width_s = Width(h.beat);
  f.width_ratio = template_width_ > 0 ? f.width_s / template_width_ : 1;
  f.amplitude_ratio = template_p2p_ > 0 ? PeakToPeak(h.beat) / template_p2p_ : 1;
  f.prematurity = (normal_rr_ > 0 && h.rr_s > 0) ? static_cast<float>(h.rr_s / normal_rr_) : 0;

  const bool matches = f.correlation >= options_.match_corr &&
                       f.width_ratio < options_.wide_ratio;
  const bool wide = f.width_s >= options_.wide_qrs_s && f.width_ratio >= options_.wide_ratio;
  const bool large = f.amplitude_ratio >= options_.amplitude_ratio;
  const bool premature = f.prematurity > 0 && f.prematurity < options_.premature_ratio;
  if (matches) {
    c.label = 'N';
  } else if (f.correlation < options_.v_corr && (wide || large)) {
    c.label = 'V';
  } else if (f.correlation < options_.match_corr && wide && premature) {
    c.label = 'V';
  } else if (f.correlation < options_.v_corr && !premature) {
    c.label = 'Q';
  } else {
    c.label = 'N';
  }

  if (c.label == 'N') {
    if (matches) {
      for (size_t k = 0; k < template_.size(); ++k) {
        template_[k] += kTemplateRate * (h.beat[k] - template_[k]);
      }
      template_width_ += kTemplateRate * (Width(template_) - template_width_);
      template_p2p_ = PeakToPeak(template_);
    }
    if (h.rr_s > 0) {
      normal_rr_ = normal_rr_ > 0 ? normal_rr_ + 0.125 * (h.rr_s - normal_rr_) : h.rr_s;
    }
  }
  return c;
}

void BeatClassifier::Add(int64_t id, std::span<const float> window, double rr_s,
                         std::vector<ClassifiedBeat>& out) {
  if (static_cast<int>(window.size()) != window_size()) {
    throw std::invalid_argument(fmt::format("BeatClassifier::Add: window of {} samples, want {}",
                                            window.size(), window_size()));
  }
  held_.push_back(Held{id, Prepare(window), rr_s});
  if (template_.empty()) {
    if (static_cast<int>(held_.size()) < options_.learning_beats) return;
    BuildTemplate();
  }
  while (!held_.empty()) {
    out.push_back(Classify(held_.front()));
    held_.pop_front();
  }
}

void BeatClassifier::Flush(std::vector<ClassifiedBeat>& out) {
  if (held_.empty()) return;
  if (template_.empty()) {
    if (held_.size() < 3) {
      // Too few beats to know what is normal for this patient.
      for (const auto& h : held_) out.push_back(ClassifiedBeat{h.id, 'Q', {}});
      held_.clear();
      return;
    }
    BuildTemplate();
  }
  while (!held_.empty()) {
    out.push_back(Classify(held_.front()));
    held_.pop_front();
  }
}

void BeatClassifier::Save(ops::SnapshotWriter& w) const {
  w.Put<uint32_t>(kSnapshotVersion);
  w.Put<int32_t>(half_);
  w.PutSpan<float>(template_);
  w.Put<float>(template_width_);
  w.Put<float>(template_p2p_);
  w.Put<double>(normal_rr_);
  w.Put<uint64_t>(held_.size());
  for (const auto& h : held_) {
    w.Put<int64_t>(h.id);
    w.PutSpan<float>(h.beat);
    w.Put<double>(h.rr_s);
  }
}

void BeatClassifier::Load(ops::SnapshotReader& r) {
  if (r.Get<uint32_t>() != kSnapshotVersion) throw ops::SnapshotError("classifier: unknown version");
  if (r.Get<int32_t>() != half_) throw ops::SnapshotError("classifier: other sampling rate");
  const auto size = static_cast<size_t>(window_size());
  auto tmpl = r.GetVector<float>();
  if (!tmpl.empty() && tmpl.size() != size) throw ops::SnapshotError("classifier: template size");
  const float width = r.Get<float>();
  const float p2p = r.Get<float>();
  const double normal_rr = r.Get<double>();
  const auto held_count = r.Get<uint64_t>();
  if (held_count > 1000) throw ops::SnapshotError("classifier: too many held beats");
  std::deque<Held> held;
  for (uint64_t i = 0; i < held_count; ++i) {
    Held h;
    h.id = r.Get<int64_t>();
    h.beat = r.GetVector<float>();
    if (h.beat.size() != size) throw ops::SnapshotError("classifier: beat size");
    h.rr_s = r.Get<double>();
    held.push_back(std::move(h));
  }
  template_ = std::move(tmpl);
  template_width_ = width;
  template_p2p_ = p2p;
  normal_rr_ = normal_rr;
  held_ = std::move(held);
}

}  // namespace vigil::ecg
