// The trained AF model (issue 18): which window features it reads, where it comes from, and how
// the detector turns a window into its inputs.
//
// The model is a tree ensemble (operators/core/tree_ensemble.h) trained by training/train_af.sh
// on the CinC 2017 training records (../shared/data/cinc2017-train) from features that this
// same code exported (`vigil replay --measurements` with ecg.arrhythmia.af_feature_trace=1), so
// training and serving compute the inputs one way. The repository's model,
// models/ecg_af.model, is compiled into the binary; `InstallAfModel` replaces it for the
// process (vigil run: analysis.af_model, vigil replay / eval: --af-model) before any analysis
// plan is made.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string_view>

#include "operators/core/tree_ensemble.h"

namespace vigil::ecg {

// The model's inputs, in order (AtrialFibrillationDetector::WindowFeatures):
inline constexpr std::array<std::string_view, 15> kAfModelFeatures = {
    "irregularity",           // normalised median successive RR difference (Petrenas et al. 2015)
    "regular_fraction",       // intervals within 5 % of the median
    "amplitude_cv",           // QRS amplitude variation
    "p_wave_coherence",       // P-wave coherence (Babaeizadeh et al. 2009); NaN: unknown
    "p_wave_lock",            // P-wave rate lock; NaN: unknown
    "rr_entropy",             // COSEn (Lake & Moorman 2011), 16 intervals
    "atrial_noise",           // noise between the beats over the QRS amplitude; NaN: unknown
    "heart_rate_bpm",         // 60 / mean interval
    "successive_difference",  // RMSSD / mean interval
    "coverage",               // judged time / window span (left-out beats)
    // Over the last 32 accepted intervals (NaN until 16 are there):
    "irregularity_long", "successive_difference_long", "rr_entropy_long",
    "turning_point_ratio",  // Dash et al., Ann Biomed Eng 37:1701-1709, 2009
    "shannon_entropy",      // of the RR histogram, Dash et al. 2009
};
using AfModelInputs = std::array<double, kAfModelFeatures.size()>;

// The model the process serves: the installed one, else the repository's (embedded). Throws
// ops::ModelError if the embedded text is broken (a build defect) or was trained on other
// features.
std::shared_ptr<const ops::TreeEnsemble> CurrentAfModel();
// Loads, validates (format, features) and installs `path` for every detector made after the
// call. Throws ops::ModelError naming the path.
void InstallAfModel(const std::filesystem::path& path);

}  // namespace vigil::ecg
