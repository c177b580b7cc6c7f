// Rule-based beat classification into the AAMI classes N (normal and supraventricular
// conduction), V (ventricular ectopic) and Q (unclassifiable), without trained model files.
//
// Each beat is compared with the patient's own running normal template, which is what
// separates ventricular from normal conduction regardless of lead placement and body habitus
// (the approach of rule-based monitoring classifiers, e.g. Hamilton's OSEA beat classifier,
// and of de Chazal et al. 2004's morphology + RR feature set, without its trained weights):
//   - morphology: the best Pearson correlation of the QRS (+-100 ms around the fiducial point)
//     with the template over +-20 ms of alignment; the ratio of peak-to-peak amplitudes;
//   - QRS width: the span around the fiducial point where the smoothed absolute slope stays
//     above 20 % of its maximum (ventricular complexes are wide: >= 120 ms);
//   - rhythm: prematurity = RR / running mean of normal RR.
// A beat is V when its shape differs from the template and it is wide or much larger, or when
// it differs moderately and is both wide and premature; N when it matches; Q when it differs
// without any ventricular sign (mostly noise). Matching N beats refresh the template (an
// exponential average, 1/16 per beat) so slow morphology drift is followed.
//
// Learning: the first `learning_beats` beats are held until the template exists (the most
// typical of them, averaged with those like it); they are then classified and released in
// order. Afterwards every beat is released on Add.
//
// Threading: one BeatClassifier per stream, used by one thread at a time. The constructor
// throws ops::OptionError for a bad option; Load throws ops::SnapshotError.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string_view>
#include <vector>

#include "operators/core/snapshot.h"

namespace vigil::ecg {

struct BeatClassifierOptions {
  int learning_beats = 8;
  double match_corr = 0.9;      // >= this and not wide: same morphology as the template
  double v_corr = 0.75;         // below this: clearly another morphology
  double wide_qrs_s = 0.12;     // absolute width of a ventricular complex
  double wide_ratio = 1.35;     // width relative to the template's
  double amplitude_ratio = 1.6; // peak-to-peak relative to the template's
  double premature_ratio = 0.85;
};

// Throws ops::OptionError naming "<prefix><option>" and the value.
void ValidateBeatClassifierOptions(const BeatClassifierOptions& options,
                                   std::string_view prefix = "classifier.");

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
  bool has_template() const { return !template_.empty(); }

  void Save(ops::SnapshotWriter& w) const;
  void Load(ops::SnapshotReader& r);

 private:
  struct Held {
    int64_t id;
    std::vector<float> beat;  // baseline-subtracted window
    double rr_s;
  };
  std::vector<float> Prepare(std::span<const float> window) const;
  float Width(std::span<const float> beat) const;
  float BestCorrelation(std::span<const float> a, std::span<const float> b) const;
  float PeakToPeak(std::span<const float> beat) const;
  void BuildTemplate();
  ClassifiedBeat Classify(const Held& beat);

  BeatClassifierOptions options_;
  double fs_;
  int half_, qrs_half_, shift_, smooth_;

  std::vector<float> template_;
  float template_width_ = 0;
  float template_p2p_ = 0;
  double normal_rr_ = 0;  // running mean of RR before normal beats (s), 0 = unknown
  std::deque<Held> held_;
};

}  // namespace vigil::ecg
