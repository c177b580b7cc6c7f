// Rule-based beat classification into the AAMI classes N (normal and supraventricular
// conduction), V (ventricular ectopic) and Q (unclassifiable), without trained model files.
//
// Beats are clustered by morphology into up to `max_templates` running templates (the
// approach of rule-based monitoring classifiers such as Hamilton's OSEA, and of de Chazal et
// al. 2004's morphology + RR feature set, without trained weights). The dominant template -
// the one matched by most recent beats (counts decay with a half-life of ~140 beats) - is the
// patient's normal conduction, whatever the lead placement, bundle branch block or pacing.
// Features of a beat against the dominant template:
//   - correlation: best Pearson correlation of the QRS (+-100 ms around the fiducial point)
//     over +-10 ms of alignment;
//   - width ratio: RMS duration of the slope energy (+-150 ms) relative to the template's
//     (ventricular conduction is slow: its slope energy is spread wider);
//   - amplitude ratio: peak-to-peak relative to the template's;
//   - prematurity: RR / running mean of the RR before dominant-template beats.
// Label: N when the beat joins the dominant template (correlation >= `match_corr` and width
// within 25 %); V when it is premature and differs (correlation < `v_corr`) or is wide (width
// ratio >= `wide_ratio`), or differs and is wide (or large and somewhat wide) without being
// premature (escape beats, VT); Q when it is an isolated odd complex that correlates poorly
// (mostly noise); otherwise N (another normally conducted morphology, e.g. after a change of
// body position, until it becomes the dominant one).
// Templates follow slow drift: a matching beat moves its template by 1/16.
//
// Learning: the first `learning_beats` beats are held until the clusters show which
// morphology dominates; they are then labelled and released in order. Afterwards every beat
// is released on Add.
//
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string_view>
#include <vector>

#include "operators/core/parameters.h"
#include "operators/core/snapshot.h"

namespace vigil::ecg {

struct BeatClassifierOptions {
  int learning_beats = 8;
  int max_templates = 6;
  double match_corr = 0.9;        // >= this (and similar width): the same morphology
  double v_corr = 0.8;            // below this: another morphology than the dominant one
  double wide_ratio = 1.5;        // width relative to the dominant template's
  double amplitude_ratio = 1.8;   // peak-to-peak relative to the dominant template's
  double premature_ratio = 0.85;  // RR relative to the running normal RR
};

// Keys of ecg.arrhythmia.
const ops::ParameterTable<BeatClassifierOptions>& BeatClassifierParameters();

// Throws ops::OptionError naming "ecg.arrhythmia.<key>" and the value.
void ValidateBeatClassifierOptions(const BeatClassifierOptions& options);

struct BeatFeatures {
  float correlation = 0;
  float width_s = 0;
  float width_ratio = 0;
  float amplitude_ratio = 0;
  float prematurity = 0;  // 0 when unknown
};

struct ClassifiedBeat {
  int64_t id = 0;  // as passed to Add
  char label = 'Q';
  BeatFeatures features;
};

class BeatClassifier {
 public:
  BeatClassifier(const BeatClassifierOptions& options, double sample_rate_hz);

  // Samples before and after the fiducial point that Add's `window` must hold.
  int pre() const { return half_; }
  int post() const { return half_; }
  int window_size() const { return 2 * half_ + 1; }

  // Adds a beat: `window` holds window_size() conditioned samples centred on the fiducial
  // point; `rr_s` is the interval from the previous beat (0 when unknown). Appends the beats
  // classified by this call (in Add order) to `out`.
  void Add(int64_t id, std::span<const float> window, double rr_s,
           std::vector<ClassifiedBeat>& out);
  // Classifies and releases beats still held for learning.
  void Flush(std::vector<ClassifiedBeat>& out);
  bool has_template() const { return !templates_.empty(); }

  void Save(ops::SnapshotWriter& w) const;
  void Load(ops::SnapshotReader& r);

 private:
  struct Held {
    int64_t id;
    std::vector<float> beat;  // baseline-subtracted window
    double rr_s;
  };
  struct Template {
    std::vector<float> shape;
    std::vector<float> unit_qrs;  // QRS part, mean removed, unit norm (derived from shape)
    float width = 0;
    float p2p = 0;
    double weight = 0;  // decaying count of matching beats
  };
  std::vector<float> Prepare(std::span<const float> window);
  float Width(std::span<const float> beat) const;
  float PeakToPeak(std::span<const float> beat) const;
  void Normalise(Template& t) const;
  // Norms of the beat's QRS part (mean removed) at every alignment shift, for Correlation.
  void PrepareShifts(std::span<const float> beat);
  // Best Pearson correlation of the prepared beat with a template over the shifts.
  float Correlation(std::span<const float> beat, const Template& t) const;
  // Index of the matching template (updated with the beat when `update`), or of a new one;
  // -1 when nothing matches and `update` is false. Fills corr_ for every template.
  int Match(const Held& beat, float width, float p2p, bool update);
  int Dominant() const;
  ClassifiedBeat Classify(const Held& beat, bool update);

  BeatClassifierOptions options_;
  double fs_;
  int half_, qrs_half_, shift_, width_half_;

  std::vector<Template> templates_;
  double normal_rr_ = 0;  // running mean of RR before dominant-template beats (s), 0 = unknown
  int64_t seen_ = 0;
  std::deque<Held> held_;
  // Scratch (not state).
  std::vector<float> shift_norm_, corr_;
};

}  // namespace vigil::ecg
