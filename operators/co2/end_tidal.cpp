#include "operators/co2/end_tidal.h"

#include <algorithm>
#include <cmath>

namespace vigil::ops {

void EndTidalExtractor::Reset() {
  have_ = 0;
  in_expiration_ = false;
  max_ = 0;
}

void EndTidalExtractor::Process(const Chunk& chunk,
                                const std::function<void(TimeUs, double)>& emit) {
  const TimeUs min_us = FromSeconds(o_.min_expiration_s);
  for (size_t i = 0; i < chunk.values.size(); ++i) {
    const float x = chunk.values[i];
    if (std::isnan(x)) {
      Reset();
      continue;
    }
    if (have_ < 2) {
      prev2_ = prev1_;
      prev1_ = x;
      ++have_;
      continue;
    }
    // Median of the last three samples, attributed to the middle one.
    const float m = std::max(std::min(prev2_, prev1_), std::min(std::max(prev2_, prev1_), x));
    const TimeUs t =
        SampleTime(chunk.first_sample_us, chunk.sample_rate_hz, static_cast<int64_t>(i) - 1);
    prev2_ = prev1_;
    prev1_ = x;
    if (!in_expiration_) {
      if (m > o_.on_mm_hg) {
        in_expiration_ = true;
        start_us_ = t;
        max_ = m;
        max_us_ = t;
      }
    } else if (m < o_.off_mm_hg) {
      in_expiration_ = false;
      if (t - start_us_ >= min_us) emit(max_us_, max_);
    } else if (m > max_) {
      max_ = m;
      max_us_ = t;
    }
  }
}

void EndTidalExtractor::Put(SnapshotWriter& w) const {
  w.Put(prev2_);
  w.Put(prev1_);
  w.Put<int32_t>(have_);
  w.Put<uint8_t>(in_expiration_);
  w.Put(start_us_);
  w.Put(max_);
  w.Put(max_us_);
}

void EndTidalExtractor::Get(SnapshotReader& r) {
  prev2_ = r.Get<float>();
  prev1_ = r.Get<float>();
  have_ = r.Get<int32_t>();
  in_expiration_ = r.Get<uint8_t>();
  start_us_ = r.Get<TimeUs>();
  max_ = r.Get<double>();
  max_us_ = r.Get<TimeUs>();
}

}  // namespace vigil::ops
