#include "operators/ecg/atrial_fibrillation_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "operators/core/options.h"
#include "operators/core/parameters.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/ecg/episode_tracker.h"
#include "operators/filters/order_statistic.h"

namespace vigil::ecg {

namespace {
// The most beats any window (RR, P-wave, COSEn) may hold: the bound of every per-window array
// and of the window parameters.
constexpr int kMaxWindowBeats = 64;
// Intervals a snapshot may hold: the largest window plus room for the ones about to leave it.
constexpr uint64_t kMaxSnapshotIntervals = 100;
}  // namespace

const ops::ParameterTable<AtrialFibrillationOptions>& AfParameters() {
  using O = AtrialFibrillationOptions;
  static const ops::ParameterTable<O> table = {
      {"af_window_beats", &O::window_beats, 4, kMaxWindowBeats, "beats",
       "RR intervals the irregularity is measured over (Petrenas et al. 2015: 12)"},
      {"af_min_window_beats", &O::min_window_beats, 4, kMaxWindowBeats, "beats",
       "window at the start of a stream, growing to af_window_beats; 0: none", 0},
      {"af_max_lag", &O::max_lag, 1, 4, "", "largest lag of the lagged RR differences"},
      {"af_threshold", &O::threshold, 0.001, 1, "", "irregularity above which AF opens"},
      {"af_release", &O::release, 0.1, 1, "fraction", "AF closes below this share of af_threshold"},
      {"af_smoothing", &O::smoothing, 0.01, 1, "", "weight of the newest value in the average"},
      {"af_regular_tolerance", &O::regular_tolerance, 0, 0.5, "fraction",
       "intervals within this share of the median count as regular ..."},
      {"af_regular_fraction_max", &O::regular_fraction_max, 0, 1, "fraction",
       "... and more regular intervals than this veto AF"},
      {"af_regular_fraction_max_no_p", &O::regular_fraction_max_no_p, 0, 1, "fraction",
       "the same limit when P waves are absent (fast AF)"},
      {"af_amplitude_cv_max", &O::amplitude_cv_max, 0.01, 100, "",
       "QRS amplitude variation above which beats are unreliable"},
      {"af_exclude_supraventricular", &O::exclude_supraventricular, 0, 1, "",
       "1: intervals at supraventricular ectopic beats are left out too"},
      {"af_min_rr_s", &O::min_rr_s, 0.1, 1, "s", "shorter intervals are not used"},
      {"af_max_rr_s", &O::max_rr_s, 0.1, 10, "s",
       "longer intervals are not used; at least af_min_rr_s"},
      {"af_p_wave_beats", &O::p_wave_beats, 4, kMaxWindowBeats, "beats",
       "beats whose PR segments the P-wave coherence is judged over"},
      {"af_p_wave_coherence_max", &O::p_wave_coherence_max, -1, 1, "",
       "P-wave coherence above which the rhythm has P waves: not AF (Babaeizadeh et al. 2009)"},
      {"af_p_wave_absent_max", &O::p_wave_absent_max, -1, 1, "",
       "coherence below which P waves are absent"},
      {"af_p_wave_lock_max_rr_s", &O::p_wave_lock_max_rr_s, 0, 10, "s",
       "below this median interval coherent P waves must also stay locked ..."},
      {"af_p_wave_lock_min", &O::p_wave_lock_min, -1, 1, "",
       "... correlating across short and long preceding intervals by this much"},
      {"af_entropy_min", &O::entropy_min, -100, 10, "",
       "COSEn below which a recurring RR pattern is not AF (Lake & Moorman 2011); -100: off"},
      {"af_entropy_beats", &O::entropy_beats, 4, kMaxWindowBeats, "beats",
       "intervals of the COSEn"},
      {"af_entropy_tolerance_s", &O::entropy_tolerance_s, 0.001, 0.5, "s",
       "match tolerance of the COSEn"},
      {"af_atrial_noise_max", &O::atrial_noise_max, 0.001, 100, "",
       "noise between the beats over the QRS amplitude above which the evidence is not trusted"},
      {"af_close_hold_s", &O::close_hold_s, 0, 120, "s",
       "an episode closes only when AF has not resumed within this time"},
      {"af_model", &O::use_model, 0, 1, "",
       "1: the trained model's AF probability (models/ecg_af.model); 0: the rules alone"},
      {"af_probability_min", &O::probability_min, 0.05, 0.99, "",
       "smoothed model probability above which AF opens (lower: more sensitive, more alerts); "
       "0: the model's operating point, chosen by cross-validation when it was trained",
       0},
      {"af_model_vetoes", &O::model_vetoes, 0, 1, "",
       "1: the regular-rhythm (af_regular_fraction_max) and recurring-pattern (af_entropy_min) "
       "vetoes apply to the model too"},
      {"af_feature_trace", &O::feature_trace, 0, 1, "",
       "1: emit every window's model inputs as measurements (training; off in service)"},
  };
  return table;
}

AtrialFibrillationDetector AtrialFibrillationDetector::Make(const AtrialFibrillationOptions& o) {
  AfParameters().Check(kEcgOperatorName, o);
  ops::RequireParameter(o.max_rr_s >= o.min_rr_s, kEcgOperatorName, "af_max_rr_s", o.max_rr_s,
                        "must be at least af_min_rr_s");
  ops::RequireParameter(o.min_window_beats <= o.window_beats, kEcgOperatorName,
                        "af_min_window_beats", o.min_window_beats,
                        "must be at most af_window_beats");
  return AtrialFibrillationDetector(o);
}

AtrialFibrillationDetector::AtrialFibrillationDetector(const AtrialFibrillationOptions& o)
    : options_(o), model_(o.use_model ? CurrentAfModel() : nullptr) {}

double AtrialFibrillationDetector::Threshold() const {
  if (!model_) return options_.threshold;
  return options_.probability_min > 0 ? options_.probability_min : model_->operating_point();
}

AfModelInputs AtrialFibrillationDetector::ModelInputs(const WindowFeatures& f) {
  // COSEn is +infinity when no two intervals match (no structure at all): the largest value
  // 16 intervals can give is about 3, so 10 stands for "none" without leaving the number line.
  const auto finite = [](double e) { return std::isinf(e) ? 10 : e; };
  return {f.irregularity,
          f.regular_fraction,
          f.amplitude_cv,
          f.p_wave_coherence,
          f.p_wave_lock,
          finite(f.rr_entropy),
          f.atrial_noise,
          f.heart_rate_bpm,
          f.successive_difference,
          f.coverage,
          f.irregularity_long,
          f.successive_difference_long,
          finite(f.rr_entropy_long),
          f.turning_point_ratio,
          f.shannon_entropy};
}

namespace {

// The context features of WindowFeatures over the last kAfContextBeats intervals of `iv`.
template <typename Intervals>
void ContextFeatures(const Intervals& iv, double tolerance_s,
                     AtrialFibrillationDetector::WindowFeatures& f) {
  constexpr size_t kMax = AtrialFibrillationDetector::kAfContextBeats;
  const size_t n = std::min(iv.size(), kMax);
  if (n < kMax / 2) return;
  std::array<double, kMax> r{};
  double mean = 0;
  for (size_t k = 0; k < n; ++k) {
    r[k] = iv[iv.size() - n + k].rr_s;
    mean += r[k];
  }
  mean /= static_cast<double>(n);
  std::array<double, kMax> d{};
  double sum_d2 = 0;
  size_t turns = 0;
  for (size_t k = 1; k < n; ++k) {
    d[k - 1] = std::fabs(r[k] - r[k - 1]);
    sum_d2 += d[k - 1] * d[k - 1];
    if (k + 1 < n) turns += (r[k] - r[k - 1]) * (r[k + 1] - r[k]) < 0;
  }
  const auto half = static_cast<ptrdiff_t>((n - 1) / 2);
  std::nth_element(d.begin(), d.begin() + half, d.begin() + static_cast<ptrdiff_t>(n - 1));
  f.irregularity_long = d[static_cast<size_t>(half)] / mean;
  f.successive_difference_long = std::sqrt(sum_d2 / static_cast<double>(n - 1)) / mean;
  f.rr_entropy_long = CoefficientOfSampleEntropy(std::span(r.data(), n), tolerance_s);
  f.turning_point_ratio = static_cast<double>(turns) / static_cast<double>(n - 2);
  // Dash et al.: the shortest and longest intervals left out (here 1/16 each side), the rest in
  // 16 equal bins between its extremes; entropy over log(16), 0 (one bin) to 1 (uniform).
  std::array<double, kMax> sorted = r;
  std::sort(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(n));
  const size_t cut = n / 16;
  const double lo = sorted[cut], hi = sorted[n - 1 - cut];
  std::array<int, 16> bins{};
  for (size_t k = cut; k < n - cut; ++k) {
    const double x = hi > lo ? (sorted[k] - lo) / (hi - lo) : 0;
    ++bins[std::min<size_t>(15, static_cast<size_t>(x * 16))];
  }
  double entropy = 0;
  const auto used = static_cast<double>(n - 2 * cut);
  for (const int b : bins) {
    if (b > 0) entropy -= b / used * std::log(b / used);
  }
  f.shannon_entropy = entropy / std::log(16.0);
}

}  // namespace

namespace {

// The smoothed measure under `level`, the heart rate over the held intervals and the burden.
std::vector<ops::Measure> StateMeasures(const AtrialFibrillationDetector::State& s,
                                        std::string level) {
  double mean_rr = 0;
  for (const auto& i : s.intervals) mean_rr += i.rr_s;
  if (!s.intervals.empty()) mean_rr /= static_cast<double>(s.intervals.size());
  return {{std::move(level), s.smoothed, "1"},
          {"heart_rate", mean_rr > 0 ? 60 / mean_rr : 0, "bpm"},
          {"af_burden", s.analysed_us > 0 ? 100 * s.af_us / s.analysed_us : 0, "%"}};
}

}  // namespace

ops::Explanation AtrialFibrillationDetector::Explain(const State& s,
                                                     const AfModelInputs* inputs) const {
  ops::Explanation why;
  if (model_) return ExplainModel(s, inputs);
  why.algorithm = "ecg.af.rr_irregularity";
  why.version = "1.5.0";  // 1.4: close hold; 1.5: P waves must stay locked at fast rates
  why.measures = StateMeasures(s, "rr_irregularity");
  if (!std::isnan(s.last_p_wave_coherence)) {
    why.measures.push_back({"p_wave_coherence", s.last_p_wave_coherence, "1"});
  }
  why.limits = {{"af_threshold", options_.threshold, "1", ">"},
                {"af_p_wave_coherence_max", options_.p_wave_coherence_max, "1", "<="},
                {"af_p_wave_lock_min", options_.p_wave_lock_min, "1", ">="},
                {"af_window", static_cast<double>(options_.window_beats), "beats", "="},
                {"af_regular_fraction_max", options_.regular_fraction_max, "1", "<="},
                {"af_amplitude_cv_max", options_.amplitude_cv_max, "1", "<="},
                {"af_entropy_min", options_.entropy_min, "1", ">="},
                {"af_atrial_noise_max", options_.atrial_noise_max, "1", "<="},
                {"af_close_hold_s", options_.close_hold_s, "s", ">="}};
  why.rule =
      "irregular RR without P waves and without an underlying regular rhythm (normalised "
      "median lagged RR difference over the beat window; P waves locked to the QRS, "
      "ectopy, bigeminy/trigeminy, recurring RR patterns (low COSEn), unreliable beats "
      "and noise between the beats suppressed); an episode ends only after af_close_hold_s "
      "without AF; an AF alarm needs an episode >= 30 s";
  why.note =
      "after Petrenas, Marozas & Sornmo, Comput Biol Med 2015 (RR) and Babaeizadeh et al., "
      "J Electrocardiol 2009 (P waves), Lake & Moorman, Am J Physiol Heart 2011 (COSEn)";
  return why;
}

void AtrialFibrillationDetector::Close(State& s, ops::TimeUs end_us, ops::Events& out) const {
  if (!s.open) return;
  s.open = false;
  if (s.closing) s.af_us -= s.held_af_us;
  s.closing = false;
  s.held_af_us = 0;
  s.last_end_us = std::max(end_us, s.start_us);
  out.push_back(MakeEpisode(ops::EpisodeKind::kAtrialFibrillation, ops::Episode::Phase::kClosed,
                            s.start_us, std::max(end_us, s.start_us), Explain(s)));
}

void AtrialFibrillationDetector::Stop(State& s, ops::Events& out) const {
  Close(s, s.closing ? s.closing_end_us : s.last_irregular_us, out);
  s.intervals.clear();
  s.primed = false;
  s.smoothed = 0;
  s.previous_ventricular = false;
  s.previous_unusable = false;
  s.left_out_in_a_row = 0;
}

double CoefficientOfSampleEntropy(std::span<const double> rr, double tolerance_s) {
  const size_t n = rr.size();
  if (n < 3) return std::numeric_limits<double>::infinity();
  // Pairs of templates of length 1 (B) and, of those, pairs whose next intervals match too (A);
  // self-matches excluded, the last interval starts no template (as in SampEn).
  size_t b = 0, a = 0;
  double mean = 0;
  for (size_t i = 0; i < n; ++i) mean += rr[i];
  mean /= static_cast<double>(n);
  for (size_t i = 0; i + 1 < n; ++i) {
    for (size_t j = i + 1; j + 1 < n; ++j) {
      if (std::fabs(rr[i] - rr[j]) > tolerance_s) continue;
      ++b;
      a += std::fabs(rr[i + 1] - rr[j + 1]) <= tolerance_s;
    }
  }
  if (b == 0 || mean <= 0) return std::numeric_limits<double>::infinity();
  // No match of length 2 at all: count half a match, a bounded estimate on the high side
  // (16 intervals give too few pairs for the ratio to be 0 by chance in a patterned rhythm).
  const double ratio =
      a > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.5 / static_cast<double>(b);
  return -std::log(ratio) + std::log(2 * tolerance_s) - std::log(mean);
}

ops::Explanation AtrialFibrillationDetector::ExplainModel(const State& s,
                                                          const AfModelInputs* inputs) const {
  ops::Explanation why;
  why.algorithm = fmt::format("{}.trees", model_->name());
  why.version = model_->version();
  why.measures = StateMeasures(s, "af_probability");
  why.limits = {{"af_probability_min", Threshold(), "1", ">"},
                {"af_window", static_cast<double>(options_.window_beats), "beats", "="},
                {"af_close_hold_s", options_.close_hold_s, "s", ">="}};
  why.rule =
      "AF probability of a gradient-boosted tree model over the beat window's RR irregularity, "
      "P-wave coherence, RR entropy, regularity, beat reliability and noise, smoothed, above "
      "af_probability_min; an episode ends only after af_close_hold_s without AF; an AF alarm "
      "needs an episode >= 30 s";
  why.note = fmt::format("model {} {} ({} trees), trained on the PhysioNet/CinC 2017 training set",
                         model_->name(), model_->version(), model_->trees());
  if (inputs == nullptr) return why;
  // The window that opened the episode: the three features that raised the probability most.
  AfModelInputs share{};
  model_->Attribute(*inputs, share);
  std::array<size_t, kAfModelFeatures.size()> order{};
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return share[a] > share[b]; });
  std::string top;
  for (size_t k = 0; k < 3 && share[order[k]] > 0; ++k) {
    const size_t f = order[k];
    if (!std::isnan((*inputs)[f])) {
      why.measures.push_back({fmt::format("feature.{}", kAfModelFeatures[f]), (*inputs)[f], "1"});
    }
    top += fmt::format("{}{} {} ({:+.2f})", top.empty() ? "" : ", ", kAfModelFeatures[f],
                       std::isnan((*inputs)[f]) ? "unknown" : fmt::format("{:.3g}", (*inputs)[f]),
                       share[f]);
  }
  if (!top.empty()) why.note += "; raised most by " + top + " (log-odds)";
  return why;
}

AtrialFibrillationDetector::WindowFeatures AtrialFibrillationDetector::Features(
    const std::deque<Interval>& iv, bool complete) const {
  WindowFeatures f;
  const auto lags = static_cast<size_t>(options_.max_lag);
  if (iv.size() < MinWindow() + lags) return f;
  const auto window = std::min(static_cast<size_t>(options_.window_beats), iv.size() - lags);
  const size_t first = iv.size() - window;
  std::array<double, kMaxWindowBeats> r{};
  double mean_rr = 0;
  for (size_t k = 0; k < window; ++k) {
    r[k] = iv[first + k].rr_s;
    mean_rr += r[k];
  }
  mean_rr /= static_cast<double>(window);

  std::array<double, kMaxWindowBeats> sorted = r;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(window / 2),
                   sorted.begin() + static_cast<ptrdiff_t>(window));
  const double median = sorted[window / 2];
  size_t regular = 0;
  for (size_t k = 0; k < window; ++k) {
    regular += std::fabs(r[k] - median) <= options_.regular_tolerance * median;
  }
  f.regular_fraction = static_cast<double>(regular) / static_cast<double>(window);

  double sum = 0, sum2 = 0;
  size_t known = 0;
  for (size_t k = first; k < iv.size(); ++k) {
    const double a = iv[k].amplitude_mv;
    if (std::isnan(a)) continue;
    sum += a;
    sum2 += a * a;
    ++known;
  }
  if (known >= window / 2 && sum > 0) {
    const double mean = sum / static_cast<double>(known);
    const double var = std::max(0.0, sum2 / static_cast<double>(known) - mean * mean);
    f.amplitude_cv = std::sqrt(var) / mean;
  }

  double best = std::numeric_limits<double>::infinity();
  std::array<double, kMaxWindowBeats> d{};
  for (size_t lag = 1; lag <= lags; ++lag) {
    for (size_t k = 0; k < window; ++k) {
      d[k] = std::fabs(iv[first + k].rr_s - iv[first + k - lag].rr_s);
    }
    std::nth_element(d.begin(), d.begin() + static_cast<ptrdiff_t>(window / 2),
                     d.begin() + static_cast<ptrdiff_t>(window));
    best = std::min(best, d[window / 2]);
  }
  f.irregularity = best / mean_rr;
  f.heart_rate_bpm = 60 / mean_rr;
  double sum_d2 = 0;
  for (size_t k = 0; k < window; ++k) {
    const double dk = iv[first + k].rr_s - iv[first + k - 1].rr_s;
    sum_d2 += dk * dk;
  }
  f.successive_difference = std::sqrt(sum_d2 / static_cast<double>(window)) / mean_rr;
  const double span_s = ops::ToSeconds(iv.back().end_us - iv[first].end_us) + r[0];
  f.coverage = span_s > 0 ? std::min(1.0, mean_rr * static_cast<double>(window) / span_s) : 1;

  const size_t p_beats = std::min(iv.size(), static_cast<size_t>(options_.p_wave_beats));
  std::array<const AtrialSegment*, kMaxWindowBeats> segments{};
  for (size_t k = 0; k < p_beats; ++k) segments[k] = &iv[iv.size() - p_beats + k].atrial;
  f.p_wave_coherence = PWaveCoherence(std::span(segments.data(), p_beats), p_beats / 2);
  if (!std::isnan(f.p_wave_coherence) &&
      (complete || f.p_wave_coherence > options_.p_wave_coherence_max)) {
    std::array<float, kMaxWindowBeats> rr{};
    for (size_t k = 0; k < p_beats; ++k) rr[k] = iv[iv.size() - p_beats + k].rr_s;
    const std::span<const float> window_rr(rr.data(), p_beats);
    if (complete ||
        filters::OrderStatistic(window_rr, p_beats / 2) < options_.p_wave_lock_max_rr_s) {
      f.p_wave_lock = PWaveRateLock(std::span(segments.data(), p_beats), window_rr);
    }
  }

  // Steps 6 and 7 only where the irregularity matters: they cost a pass over all interval pairs
  // and over the window's PR-interval segments.
  if (complete) ContextFeatures(iv, options_.entropy_tolerance_s, f);
  if (!complete && f.irregularity < options_.threshold * options_.release) return f;
  std::array<double, kMaxWindowBeats> noise{};
  size_t noisy_known = 0;
  for (size_t k = first; k < iv.size(); ++k) {
    // Computed once per beat (AtrialSegment::Prepare), not at every window it is part of.
    const double rms = iv[k].atrial.rms_second_difference;
    const double amplitude = iv[k].amplitude_mv;
    if (std::isnan(rms) || std::isnan(amplitude) || amplitude <= 0) continue;
    noise[noisy_known++] = rms / amplitude;
  }
  if (noisy_known >= window / 2) {
    std::nth_element(noise.begin(), noise.begin() + static_cast<ptrdiff_t>(noisy_known / 2),
                     noise.begin() + static_cast<ptrdiff_t>(noisy_known));
    f.atrial_noise = noise[noisy_known / 2];
  }
  const size_t e_beats = std::min(iv.size(), static_cast<size_t>(options_.entropy_beats));
  if (e_beats >= window) {
    std::array<double, kMaxWindowBeats> e{};
    for (size_t k = 0; k < e_beats; ++k) e[k] = iv[iv.size() - e_beats + k].rr_s;
    f.rr_entropy =
        CoefficientOfSampleEntropy(std::span(e.data(), e_beats), options_.entropy_tolerance_s);
  }
  return f;
}

size_t AtrialFibrillationDetector::MinWindow() const {
  return static_cast<size_t>(options_.min_window_beats != 0 ? options_.min_window_beats
                                                            : options_.window_beats);
}

bool AtrialFibrillationDetector::HasPWaves(const WindowFeatures& f) const {
  if (std::isnan(f.p_wave_coherence) || f.p_wave_coherence <= options_.p_wave_coherence_max) {
    return false;
  }
  // At fast rates: coherent, but moving with the preceding interval (the previous T wave).
  return std::isnan(f.p_wave_lock) || f.p_wave_lock >= options_.p_wave_lock_min;
}

bool AtrialFibrillationDetector::RegularVeto(const WindowFeatures& f) const {
  const bool no_p =
      !std::isnan(f.p_wave_coherence) && f.p_wave_coherence < options_.p_wave_absent_max;
  return f.regular_fraction >
         (no_p ? options_.regular_fraction_max_no_p : options_.regular_fraction_max);
}

bool AtrialFibrillationDetector::PatternVeto(const WindowFeatures& f) const {
  return RegularVeto(f) || (!std::isnan(f.rr_entropy) && f.rr_entropy < options_.entropy_min);
}

double AtrialFibrillationDetector::Measure(const WindowFeatures& f) const {
  const bool no_p =
      !std::isnan(f.p_wave_coherence) && f.p_wave_coherence < options_.p_wave_absent_max;
  // Step 4: a regular rhythm underneath (most intervals at the median) means ectopy, not AF.
  if (f.regular_fraction >
      (no_p ? options_.regular_fraction_max_no_p : options_.regular_fraction_max)) {
    return 0;
  }
  // Step 5: beats whose amplitudes disagree are not all QRS complexes.
  if (f.amplitude_cv > options_.amplitude_cv_max) return 0;
  // Step 3: P waves locked to the QRS complexes: the atria are not fibrillating.
  if (HasPWaves(f)) return 0;
  // Step 7: noise between the beats jitters the fiducials, fakes or hides beats and hides P
  // waves: neither the RR nor the P-wave evidence can be trusted.
  if (!std::isnan(f.atrial_noise) && f.atrial_noise > options_.atrial_noise_max) return 0;
  // Step 6: the irregularity recurs in a pattern (ectopy with its pauses), AF has none.
  if (!std::isnan(f.rr_entropy) && f.rr_entropy < options_.entropy_min) return 0;
  return f.irregularity;
}

double AtrialFibrillationDetector::Irregularity(const std::deque<Interval>& iv) const {
  return Measure(Features(iv));
}

void AtrialFibrillationDetector::OnBeat(State& s, const ops::Beat& beat, bool usable,
                                        float amplitude_mv, const AtrialSegment* atrial,
                                        ops::Events& out) const {
  const bool ventricular =
      beat.label == ops::BeatClass::kVentricular ||
      (options_.exclude_supraventricular && beat.label == ops::BeatClass::kSupraventricular);
  const bool left_out = !usable || s.previous_unusable || ventricular || s.previous_ventricular ||
                        beat.rr_s < options_.min_rr_s || beat.rr_s > options_.max_rr_s;
  s.previous_ventricular = ventricular;
  s.previous_unusable = !usable;
  const auto needed = MinWindow() + static_cast<size_t>(options_.max_lag);
  const auto keep = std::max({static_cast<size_t>(options_.window_beats + options_.max_lag),
                              static_cast<size_t>(options_.p_wave_beats),
                              static_cast<size_t>(options_.entropy_beats),
                              model_ || options_.feature_trace ? kAfContextBeats : size_t{0}});
  if (left_out) {
    if (++s.left_out_in_a_row > options_.window_beats) Stop(s, out);
    return;
  }
  s.left_out_in_a_row = 0;
  if (!s.intervals.empty()) {
    const double span = static_cast<double>(beat.time_us - s.intervals.back().end_us);
    // Time between accepted beats counts for the burden only when nothing long was left out.
    if (span <= 3 * beat.rr_s * 1e6) {
      s.analysed_us += span;
      if (s.open) s.af_us += span;
      if (s.closing) s.held_af_us += span;
    }
  }
  s.intervals.push_back(
      {beat.time_us, beat.rr_s, amplitude_mv, atrial ? *atrial : AtrialSegment{}});
  while (s.intervals.size() > keep) s.intervals.pop_front();
  if (s.intervals.size() < needed) return;
  const auto window = std::min(static_cast<size_t>(options_.window_beats),
                               s.intervals.size() - static_cast<size_t>(options_.max_lag));

  // The rules' features (P waves, regularity) always; the model's complete inputs only where
  // the model is asked: a window over a regular rhythm is vetoed before it (PatternVeto) and
  // costs no more than the rules, which is most windows of most patients.
  const auto features = Features(s.intervals);
  AfModelInputs inputs{};
  bool have_inputs = false;
  double irregularity = 0;
  if (!model_) {
    irregularity = Measure(features);
  } else if (!(options_.model_vetoes && RegularVeto(features))) {
    const auto complete = Features(s.intervals, true);
    inputs = ModelInputs(complete);
    have_inputs = true;
    irregularity = options_.model_vetoes && PatternVeto(complete) ? 0 : model_->Probability(inputs);
  }
  if (options_.feature_trace && !have_inputs) inputs = ModelInputs(Features(s.intervals, true));
  if (options_.feature_trace) {
    for (size_t k = 0; k < inputs.size(); ++k) {
      out.emplace_back(ops::Measurement{fmt::format("af_feature.{}", kAfModelFeatures[k]),
                                        inputs[k], beat.time_us});
    }
    out.emplace_back(ops::Measurement{"af_measure", irregularity, beat.time_us});
  }
  s.last_irregularity = irregularity;
  s.last_p_wave_coherence = features.p_wave_coherence;
  s.smoothed =
      s.primed ? s.smoothed + options_.smoothing * (irregularity - s.smoothed) : irregularity;
  s.primed = true;

  const double release = Threshold() * options_.release;
  if (s.smoothed > release) s.last_irregular_us = beat.time_us;
  const ops::TimeUs previous_p_wave_us = s.last_p_wave_us;
  if (s.intervals.size() >= static_cast<size_t>(options_.p_wave_beats) && HasPWaves(features)) {
    s.last_p_wave_us = beat.time_us;
  }
  if (!s.open && s.smoothed > Threshold()) {
    s.open = true;
    // The window's first interval starts at the beat before it. Where intervals were left out
    // (ectopic beats, noise) the window spans more time than it judged: the onset is set back
    // by at most twice the judged time. An episode never reaches back into the previous one.
    const auto& first = s.intervals[s.intervals.size() - window];
    double judged_s = 0;
    for (size_t k = s.intervals.size() - window; k < s.intervals.size(); ++k) {
      judged_s += s.intervals[k].rr_s;
    }
    // Nor does it reach back past the last beat whose full P-wave window (`p_wave_beats`; fewer
    // segments give a noisy coherence) had P waves locked to the QRS: that window covered the
    // beats before it. Without this, a window stretched over left-out beats dated an onset on
    // MIT-BIH 201 (26 min) 27 s early, into sinus rhythm with weak P waves.
    s.start_us = std::max({first.end_us - ops::FromSeconds(first.rr_s),
                           beat.time_us - ops::FromSeconds(2 * judged_s), s.last_end_us,
                           previous_p_wave_us});
    out.push_back(MakeEpisode(ops::EpisodeKind::kAtrialFibrillation, ops::Episode::Phase::kOpened,
                              s.start_us, 0, Explain(s, have_inputs ? &inputs : nullptr)));
  } else if (s.open && s.closing && s.smoothed > Threshold()) {
    s.closing = false;  // AF resumed within the hold: still the same episode
    s.held_af_us = 0;
  } else if (s.open && !s.closing && s.smoothed <= release) {
    // The measure lags the rhythm by about half a window.
    const auto back = s.intervals[s.intervals.size() - 1 - window / 2].end_us;
    s.closing = true;
    s.closing_since_us = beat.time_us;
    s.closing_end_us = std::min(back, s.last_irregular_us);
    s.held_af_us = 0;
  }
  if (s.closing && beat.time_us - s.closing_since_us >= ops::FromSeconds(options_.close_hold_s)) {
    Close(s, s.closing_end_us, out);
  }
}

void AtrialFibrillationDetector::State::Save(ops::SnapshotWriter& w) const {
  w.Put<uint64_t>(intervals.size());
  for (const auto& i : intervals) {
    w.Put<int64_t>(i.end_us);
    w.Put<float>(i.rr_s);
    w.Put<float>(i.amplitude_mv);
    i.atrial.Save(w);
  }
  w.Put<uint8_t>(previous_ventricular);
  w.Put<uint8_t>(previous_unusable);
  w.Put<int32_t>(left_out_in_a_row);
  w.Put<double>(smoothed);
  w.Put<uint8_t>(primed);
  w.Put<uint8_t>(open);
  w.Put<int64_t>(start_us);
  w.Put<int64_t>(last_irregular_us);
  w.Put<int64_t>(last_end_us);
  w.Put<int64_t>(last_p_wave_us);
  w.Put<double>(af_us);
  w.Put<double>(analysed_us);
  w.Put<double>(last_irregularity);
  w.Put<double>(last_p_wave_coherence);
  w.Put<uint8_t>(closing);
  w.Put<int64_t>(closing_since_us);
  w.Put<int64_t>(closing_end_us);
  w.Put<double>(held_af_us);
}

void AtrialFibrillationDetector::State::Load(ops::SnapshotReader& r) {
  const auto n = r.Get<uint64_t>();
  if (n > kMaxSnapshotIntervals) throw ops::SnapshotError("af detector: too many intervals");
  intervals.clear();
  for (uint64_t k = 0; k < n; ++k) {
    Interval i;
    i.end_us = r.Get<int64_t>();
    i.rr_s = r.Get<float>();
    i.amplitude_mv = r.Get<float>();
    i.atrial.Load(r);
    intervals.push_back(i);
  }
  previous_ventricular = r.Get<uint8_t>() != 0;
  previous_unusable = r.Get<uint8_t>() != 0;
  left_out_in_a_row = r.Get<int32_t>();
  smoothed = r.Get<double>();
  primed = r.Get<uint8_t>() != 0;
  open = r.Get<uint8_t>() != 0;
  start_us = r.Get<int64_t>();
  last_irregular_us = r.Get<int64_t>();
  last_end_us = r.Get<int64_t>();
  last_p_wave_us = r.Get<int64_t>();
  af_us = r.Get<double>();
  analysed_us = r.Get<double>();
  last_irregularity = r.Get<double>();
  last_p_wave_coherence = r.Get<double>();
  closing = r.Get<uint8_t>() != 0;
  closing_since_us = r.Get<int64_t>();
  closing_end_us = r.Get<int64_t>();
  held_af_us = r.Get<double>();
}

}  // namespace vigil::ecg
