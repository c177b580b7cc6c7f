// End-tidal CO2 from a capnogram (pure signal processing, no operator state machinery).
//
// A breath's expiration is where the capnogram rises above `on_mm_hg` and lasts until it falls
// below `off_mm_hg` (hysteresis against noise at the baseline). End-tidal CO2 is the plateau
// maximum of that expiration, taken on a 3-point median of the samples so that a single-sample
// spike (an artefact, not an alveolar value) cannot become the breath's value. Expirations shorter
// than `min_expiration_s` are artefacts and give no value.
#pragma once

#include <functional>
#include <optional>

#include "operators/core/signal.h"
#include "operators/core/snapshot.h"
#include "operators/core/time.h"

namespace vigil::ops {

struct EndTidalOptions {
  double on_mm_hg = 8;
  double off_mm_hg = 4;
  double min_expiration_s = 0.5;
};

class EndTidalExtractor {
 public:
  explicit EndTidalExtractor(EndTidalOptions o = {}) : o_(o) {}
  // Calls `emit(time_of_plateau_max_us, etco2_mm_hg)` for each completed expiration.
  void Process(const Chunk& chunk, const std::function<void(TimeUs, double)>& emit);
  void Reset();
  void Put(SnapshotWriter& w) const;
  void Get(SnapshotReader& r);

 private:
  EndTidalOptions o_;
  float prev2_ = 0, prev1_ = 0;  // last two raw samples, for the 3-point median
  int have_ = 0;
  bool in_expiration_ = false;
  TimeUs start_us_ = 0;
  double max_ = 0;
  TimeUs max_us_ = 0;
};

}  // namespace vigil::ops
