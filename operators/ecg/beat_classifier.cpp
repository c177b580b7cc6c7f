#include "operators/ecg/beat_classifier.h"

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/filters/order_statistic.h"

namespace vigil::ecg {
namespace {

constexpr uint32_t kSnapshotVersion = 1;
constexpr float kTemplateRate = 1.0f / 16;
constexpr double kWeightDecay = 0.995;  // half-life ~140 beats
// A beat joins a template only if its width is within this factor: a ventricular beat can
// correlate > 0.9 with the normal QRS yet be half as wide again (MIT-BIH 223).
constexpr float kJoinWidthRatio = 1.25f;
// Templates with less weight than this are isolated odd beats (noise, artefacts).
constexpr double kEstablishedWeight = 3;

int Samples(double seconds, double fs) {
  return std::max(1, static_cast<int>(std::lround(seconds * fs)));
}

}  // namespace

const ops::ParameterTable<BeatClassifierOptions>& BeatClassifierParameters() {
  using O = BeatClassifierOptions;
  static const ops::ParameterTable<O> table = {
      {"learning_beats", &O::learning_beats, 3, 50, "beats",
       "beats held until the dominant morphology is known"},
      {"max_templates", &O::max_templates, 2, 16, "", "morphology templates kept per lead"},
      {"match_corr", &O::match_corr, 0.5, 0.999, "",
       "QRS correlation (and width within 25 %) at which a beat joins a template"},
      {"v_corr", &O::v_corr, 0.1, 0.999, "",
       "correlation with the dominant template below which a beat has another morphology; at "
       "most match_corr"},
      {"wide_ratio", &O::wide_ratio, 1.05, 3, "",
       "slope-energy width relative to the dominant template at which a beat is wide"},
      {"amplitude_ratio", &O::amplitude_ratio, 1.05, 5, "",
       "peak-to-peak relative to the dominant template at which a beat is large"},
      {"premature_ratio", &O::premature_ratio, 0.5, 0.99, "",
       "RR relative to the running normal RR below which a beat is premature"},
  };
  return table;
}

void ValidateBeatClassifierOptions(const BeatClassifierOptions& o) {
  BeatClassifierParameters().Check(kEcgOperatorName, o);
  ops::RequireParameter(o.v_corr <= o.match_corr, kEcgOperatorName, "v_corr", o.v_corr,
                        "must be at most match_corr");
}

BeatClassifier::BeatClassifier(const BeatClassifierOptions& options, double fs)
    : options_(options), fs_(fs) {
  ValidateBeatClassifierOptions(options_);
  half_ = Samples(0.2, fs);
  qrs_half_ = Samples(0.1, fs);
  shift_ = Samples(0.01, fs);
  width_half_ = Samples(0.15, fs);
}

std::vector<float> BeatClassifier::Prepare(std::span<const float> window) {
  // Baseline = median of the window (most of +-200 ms around a QRS is near the isoelectric
  // level), robust to the complex itself.
  const float base = filters::OrderStatistic(window, window.size() / 2);
  std::vector<float> beat(window.begin(), window.end());
  for (auto& v : beat) v -= base;
  return beat;
}

float BeatClassifier::Width(std::span<const float> beat) const {
  // RMS duration of the slope energy around the fiducial point: squared slopes weight the
  // QRS far above P and T waves, and a slowly conducted (ventricular) complex spreads them.
  double sum = 0, sum_t = 0, sum_tt = 0;
  for (int i = half_ - width_half_ + 1; i <= half_ + width_half_; ++i) {
    const double d = beat[static_cast<size_t>(i)] - beat[static_cast<size_t>(i - 1)];
    const double e = d * d;
    const double t = i - half_;
    sum += e;
    sum_t += e * t;
    sum_tt += e * t * t;
  }
  if (sum <= 0) return 0;
  const double mean = sum_t / sum;
  return static_cast<float>(std::sqrt(std::max(0.0, sum_tt / sum - mean * mean)) / fs_);
}

void BeatClassifier::Normalise(Template& t) const {
  const int len = 2 * qrs_half_ + 1;
  const auto q =
      std::span(t.shape).subspan(static_cast<size_t>(half_ - qrs_half_), static_cast<size_t>(len));
  t.unit_qrs.assign(q.begin(), q.end());
  Eigen::Map<Eigen::ArrayXf> u(t.unit_qrs.data(), len);
  u -= u.mean();
  const float norm = std::sqrt(u.square().sum());
  if (norm > 0) u /= norm;
}

void BeatClassifier::PrepareShifts(std::span<const float> beat) {
  // With a zero-mean template, sum((a - mean a) * u) = sum(a * u): only the beat's norm about
  // its mean depends on the shift, so it is computed once per shift, not per template.
  const int len = 2 * qrs_half_ + 1;
  shift_norm_.resize(static_cast<size_t>(2 * shift_ + 1));
  for (int s = -shift_; s <= shift_; ++s) {
    const Eigen::Map<const Eigen::ArrayXf> a(beat.data() + half_ - qrs_half_ + s, len);
    const float mean = a.mean();
    shift_norm_[static_cast<size_t>(s + shift_)] =
        std::sqrt(std::max(0.0f, a.square().sum() - static_cast<float>(len) * mean * mean));
  }
}

float BeatClassifier::Correlation(std::span<const float> beat, const Template& t) const {
  const int len = 2 * qrs_half_ + 1;
  const Eigen::Map<const Eigen::VectorXf> u(t.unit_qrs.data(), len);
  float best = -1;
  for (int s = -shift_; s <= shift_; ++s) {
    const float norm = shift_norm_[static_cast<size_t>(s + shift_)];
    if (norm <= 0) continue;
    const Eigen::Map<const Eigen::VectorXf> a(beat.data() + half_ - qrs_half_ + s, len);
    best = std::max(best, a.dot(u) / norm);
  }
  return best;
}

float BeatClassifier::PeakToPeak(std::span<const float> beat) const {
  const auto q =
      beat.subspan(static_cast<size_t>(half_ - qrs_half_), static_cast<size_t>(2 * qrs_half_ + 1));
  const auto [lo, hi] = std::minmax_element(q.begin(), q.end());
  return *hi - *lo;
}

int BeatClassifier::Match(const Held& h, float width, float p2p, bool update) {
  int best = -1;
  float best_corr = -2;
  PrepareShifts(h.beat);
  corr_.resize(templates_.size());
  for (size_t i = 0; i < templates_.size(); ++i) {
    const Template& t = templates_[i];
    const float c = Correlation(h.beat, t);
    corr_[i] = c;
    const float ratio = t.width > 0 ? width / t.width : 1;
    if (ratio > kJoinWidthRatio || ratio * kJoinWidthRatio < 1) continue;
    if (c >= options_.match_corr && c > best_corr) {
      best_corr = c;
      best = static_cast<int>(i);
    }
  }
  if (!update) return best;
  for (auto& t : templates_) t.weight *= kWeightDecay;
  if (best >= 0) {
    Template& t = templates_[static_cast<size_t>(best)];
    for (size_t k = 0; k < t.shape.size(); ++k) {
      t.shape[k] += kTemplateRate * (h.beat[k] - t.shape[k]);
    }
    t.width += kTemplateRate * (width - t.width);
    t.p2p += kTemplateRate * (p2p - t.p2p);
    t.weight += 1;
    Normalise(t);
    return best;
  }
  Template fresh{h.beat, {}, width, p2p, 1.0};
  Normalise(fresh);
  corr_.push_back(1.0f);
  if (static_cast<int>(templates_.size()) < options_.max_templates) {
    templates_.push_back(std::move(fresh));
    return static_cast<int>(templates_.size()) - 1;
  }
  const auto weakest =
      std::min_element(templates_.begin(), templates_.end(),
                       [](const Template& a, const Template& b) { return a.weight < b.weight; });
  const auto index = static_cast<size_t>(weakest - templates_.begin());
  *weakest = std::move(fresh);
  corr_[index] = 1.0f;
  corr_.pop_back();
  return static_cast<int>(index);
}

int BeatClassifier::Dominant() const {
  int best = 0;
  for (size_t i = 1; i < templates_.size(); ++i) {
    if (templates_[i].weight > templates_[static_cast<size_t>(best)].weight) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

ClassifiedBeat BeatClassifier::Classify(const Held& h, bool update) {
  ClassifiedBeat c;
  c.id = h.id;
  const float width = Width(h.beat);
  const float p2p = PeakToPeak(h.beat);
  const int matched = Match(h, width, p2p, update);
  const int dominant = Dominant();
  const Template& d = templates_[static_cast<size_t>(dominant)];
  BeatFeatures& f = c.features;
  // Against the dominant template as it was before this beat updated it.
  f.correlation = corr_[static_cast<size_t>(dominant)];
  f.width_s = width;
  f.width_ratio = d.width > 0 ? width / d.width : 1;
  f.amplitude_ratio = d.p2p > 0 ? p2p / d.p2p : 1;
  f.prematurity = (normal_rr_ > 0 && h.rr_s > 0) ? static_cast<float>(h.rr_s / normal_rr_) : 0;

  const bool wide = f.width_ratio >= options_.wide_ratio;
  const bool wider = f.width_ratio * kJoinWidthRatio >= options_.wide_ratio;  // mildly wide
  const bool large = f.amplitude_ratio >= options_.amplitude_ratio;
  const bool premature = f.prematurity > 0 && f.prematurity < options_.premature_ratio;
  const bool different = f.correlation < options_.v_corr;
  const bool established =
      matched >= 0 && templates_[static_cast<size_t>(matched)].weight >= kEstablishedWeight;
  if (matched == dominant) {
    c.label = 'N';
  } else if (premature && (different || wide)) {
    c.label = 'V';  // early and shaped or conducted differently
  } else if (different && (wide || (large && wider))) {
    c.label = 'V';  // a different, wide complex even without prematurity (e.g. escape, VT)
  } else if (different && !established && f.correlation < 0.5 * options_.v_corr) {
    c.label = 'Q';  // an isolated odd complex: most likely noise
  } else {
    c.label = 'N';  // another normally conducted morphology (e.g. positional change)
  }
  if (matched == dominant && h.rr_s > 0) {
    normal_rr_ = normal_rr_ > 0 ? normal_rr_ + 0.125 * (h.rr_s - normal_rr_) : h.rr_s;
  }
  return c;
}

void BeatClassifier::Add(int64_t id, std::span<const float> window, double rr_s,
                         std::vector<ClassifiedBeat>& out) {
  if (static_cast<int>(window.size()) != window_size()) {
    throw std::invalid_argument(fmt::format("BeatClassifier::Add: window of {} samples, want {}",
                                            window.size(), window_size()));
  }
  ++seen_;
  if (seen_ <= options_.learning_beats) {
    // Learning: cluster now, label once the dominant morphology is known.
    Held h{id, Prepare(window), rr_s};
    Match(h, Width(h.beat), PeakToPeak(h.beat), true);
    held_.push_back(std::move(h));
    if (seen_ == options_.learning_beats) Flush(out);
    return;
  }
  out.push_back(Classify(Held{id, Prepare(window), rr_s}, true));
}

void BeatClassifier::Flush(std::vector<ClassifiedBeat>& out) {
  while (!held_.empty()) {
    out.push_back(Classify(held_.front(), false));
    held_.pop_front();
  }
}

void BeatClassifier::Save(ops::SnapshotWriter& w) const {
  w.Put<uint32_t>(kSnapshotVersion);
  w.Put<int32_t>(half_);
  w.Put<uint64_t>(templates_.size());
  for (const auto& t : templates_) {
    w.PutSpan<float>(t.shape);
    w.Put<float>(t.width);
    w.Put<float>(t.p2p);
    w.Put<double>(t.weight);
  }
  w.Put<double>(normal_rr_);
  w.Put<int64_t>(seen_);
  w.Put<uint64_t>(held_.size());
  for (const auto& h : held_) {
    w.Put<int64_t>(h.id);
    w.PutSpan<float>(h.beat);
    w.Put<double>(h.rr_s);
  }
}

void BeatClassifier::Load(ops::SnapshotReader& r) {
  ops::ReadVersion(r, "classifier", kSnapshotVersion);
  if (r.Get<int32_t>() != half_) throw ops::SnapshotError("classifier: other sampling rate");
  const auto size = static_cast<size_t>(window_size());
  const auto count = r.Get<uint64_t>();
  if (count > static_cast<uint64_t>(options_.max_templates)) {
    throw ops::SnapshotError("classifier: too many templates");
  }
  std::vector<Template> templates;
  for (uint64_t i = 0; i < count; ++i) {
    Template t;
    t.shape = r.GetVector<float>();
    if (t.shape.size() != size) throw ops::SnapshotError("classifier: template size");
    t.width = r.Get<float>();
    t.p2p = r.Get<float>();
    t.weight = r.Get<double>();
    Normalise(t);
    templates.push_back(std::move(t));
  }
  const double normal_rr = r.Get<double>();
  const auto seen = r.Get<int64_t>();
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
  templates_ = std::move(templates);
  normal_rr_ = normal_rr;
  seen_ = seen;
  held_ = std::move(held);
}

}  // namespace vigil::ecg
