// Device time. Every timestamp in operators is device time in microseconds since the Unix epoch
// (UTC), never the consumer's wall clock.
#pragma once

#include <cmath>
#include <cstdint>

namespace vigil::ops {

using TimeUs = int64_t;

inline constexpr TimeUs kMicrosPerSecond = 1'000'000;

// Time of sample `index` of a stream starting at `first_us` with rate `rate_hz`.
inline TimeUs SampleTime(TimeUs first_us, double rate_hz, int64_t index) {
  return first_us + static_cast<TimeUs>(std::llround(static_cast<double>(index) * 1e6 / rate_hz));
}

inline double ToSeconds(TimeUs t) { return static_cast<double>(t) * 1e-6; }
inline TimeUs FromSeconds(double s) { return static_cast<TimeUs>(std::llround(s * 1e6)); }

}  // namespace vigil::ops
