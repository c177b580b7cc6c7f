// Device time. Every timestamp in operators is device time in microseconds since the Unix epoch
// (UTC), never the consumer's wall clock.
#pragma once

#include <cmath>
#include <cstdint>

namespace vigil::ops {

using TimeUs = int64_t;

inline constexpr TimeUs kMicrosPerSecond = 1'000'000;

// Device times beyond this magnitude (about 285 years either side of 1970) are not plausible;
// the runtime refuses them at its input (PatientAnalysis::OnFrame), so that sums and differences
// of two accepted times and a frame's duration stay far from int64_t overflow.
inline constexpr TimeUs kMaxPlausibleTimeUs = TimeUs{1} << 53;

namespace detail {
// `us` rounded, saturated to the int64_t range: llround of a value out of range, or of NaN, is
// unspecified, and both can come from a hostile rate or a misconfigured duration.
inline TimeUs RoundSaturated(double us) {
  constexpr double kLimit = 9.2e18;                          // just below INT64_MAX (9.22e18)
  if (!(us > -kLimit)) return -static_cast<TimeUs>(kLimit);  // NaN lands here too
  if (!(us < kLimit)) return static_cast<TimeUs>(kLimit);
  return static_cast<TimeUs>(std::llround(us));
}
}  // namespace detail

// Time of sample `index` of a stream starting at `first_us` with rate `rate_hz`. Saturates
// instead of overflowing (undefined behaviour) on times or rates no valid frame has.
inline TimeUs SampleTime(TimeUs first_us, double rate_hz, int64_t index) {
  const TimeUs offset = detail::RoundSaturated(static_cast<double>(index) * 1e6 / rate_hz);
  TimeUs t = 0;
  if (__builtin_add_overflow(first_us, offset, &t)) return offset > 0 ? INT64_MAX : INT64_MIN;
  return t;
}

// Milliseconds (e.g. a Kafka record timestamp, which any producer may set) to microseconds,
// saturated instead of overflowing.
inline TimeUs FromMillis(int64_t ms) {
  TimeUs us = 0;
  if (__builtin_mul_overflow(ms, TimeUs{1000}, &us)) return ms > 0 ? INT64_MAX : INT64_MIN;
  return us;
}

inline double ToSeconds(TimeUs t) {
  return static_cast<double>(t) * 1e-6;
}
inline TimeUs FromSeconds(double s) {
  return detail::RoundSaturated(s * 1e6);
}

// Sample index <-> device time for one stream whose chunks each carry the device time of their
// first sample. A device clock drifts against its sample clock (and stamps jitter): over hours
// the count since the stream began and the stamps part by seconds. The anchor therefore follows
// the chunks: it moves to a chunk's first sample when the chunk's stamp departs from the time
// the anchor gives it by more than kReanchorUs. Beat times (ecg_monitor.cpp) and lookups of
// samples at those times (ring buffers), each with its own anchor on the same chunks, agree to
// within kReanchorUs however long the stream runs.
struct SampleAnchor {
  static constexpr TimeUs kReanchorUs = 1000;
  int64_t sample = 0;  // index of the anchored sample
  TimeUs time_us = 0;  // its device time
  bool set = false;

  // A chunk whose first sample has index `first_sample` and device time `first_us`.
  void OnChunk(int64_t first_sample, TimeUs first_us, double rate_hz) {
    const TimeUs expected = TimeOf(first_sample, rate_hz);
    if (!set || (first_us > expected ? first_us - expected : expected - first_us) > kReanchorUs) {
      sample = first_sample;
      time_us = first_us;
      set = true;
    }
  }
  TimeUs TimeOf(int64_t index, double rate_hz) const {
    return SampleTime(time_us, rate_hz, index - sample);
  }
  // The index of the sample nearest to device time `t`.
  int64_t IndexOf(TimeUs t, double rate_hz) const {
    return sample + static_cast<int64_t>(std::llround(ToSeconds(t - time_us) * rate_hz));
  }
  // Snapshot form, shared by every state that keeps an anchor (SnapshotWriter / Reader,
  // snapshot.h; templates so that time.h needs no snapshot header).
  template <typename Writer>
  void Save(Writer& w) const {
    w.template Put<int64_t>(sample);
    w.template Put<int64_t>(time_us);
    w.template Put<uint8_t>(set);
  }
  template <typename Reader>
  void Load(Reader& r) {
    sample = r.template Get<int64_t>();
    time_us = r.template Get<int64_t>();
    set = r.template Get<uint8_t>() != 0;
  }
};

}  // namespace vigil::ops
