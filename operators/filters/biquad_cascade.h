// Streaming runners for designed filters: a cascade of second-order sections (IIR) and a
// linear-phase moving-average baseline remover. Each object owns its coefficients and its
// state; `Reset` clears the state; `ProcessBlock` runs a whole span without any virtual call
// (the per-sample step is an inline function the compiler unrolls over the sections).
//
// Threading: an object is used by one thread at a time; copies are independent.
// State export (`SaveState` / `LoadState`) exists so operators can snapshot a running filter
// bit-exactly; LoadState throws std::invalid_argument on a size mismatch.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "operators/filters/filter_design.h"

namespace vigil::filters {

// One sample through `count` sections in transposed direct form II (two state values per
// section, double precision: the 0.5 Hz baseline poles sit within 1e-3 of the unit circle at
// 1 kHz, too close for float). The one arithmetic both runners below share.
inline double StepSections(const Biquad* sections, double* state, size_t count, double x) {
  for (size_t i = 0; i < count; ++i) {
    const Biquad& c = sections[i];
    double* s = state + 2 * i;
    const double y = c.b0 * x + s[0];
    s[0] = c.b1 * x - c.a1 * y + s[1];
    s[1] = c.b2 * x - c.a2 * y;
    x = y;
  }
  return x;
}

class BiquadCascade {
 public:
  BiquadCascade() = default;
  explicit BiquadCascade(Sections sections);

  // One sample through every section (StepSections).
  double Step(double x) {
    return StepSections(sections_.data(), state_.data(), sections_.size(), x);
  }

  // out[i] = filter(in[i]); `in` and `out` may be the same span. Throws std::invalid_argument
  // when the sizes differ.
  void ProcessBlock(std::span<const float> in, std::span<float> out);
  void ProcessBlock(std::span<float> in_out) { ProcessBlock(in_out, in_out); }

  void Reset();
  const Sections& sections() const { return sections_; }
  // Group delay in samples at `frequency_hz` (IIR: frequency dependent; state it where used).
  double GroupDelaySamples(double frequency_hz, double sample_rate_hz) const;

  std::span<const double> SaveState() const { return state_; }
  void LoadState(std::span<const double> state);

 private:
  Sections sections_;
  std::vector<double> state_;  // two per section
};

// The same filter for an inner loop: exactly N sections, coefficients and state held by value,
// so a local copy keeps its state in registers (BiquadCascade's state lives in a vector that a
// per-sample loop must write back to memory every sample, which lengthens the filter's
// sample-to-sample dependency chain). Both step through StepSections, so the outputs are
// bit-identical. Typical use: copy from a BiquadCascade before a
// block, Step through it, StoreState back after it.
template <size_t N>
class FixedBiquadCascade {
 public:
  // Throws std::invalid_argument when `from` does not have exactly N sections.
  explicit FixedBiquadCascade(const BiquadCascade& from) {
    if (from.sections().size() != N) {
      throw std::invalid_argument("FixedBiquadCascade: section count differs");
    }
    std::copy_n(from.sections().begin(), N, sections_.begin());
    std::copy_n(from.SaveState().begin(), 2 * N, state_.begin());
  }

  double Step(double x) { return StepSections(sections_.data(), state_.data(), N, x); }

  void StoreState(BiquadCascade& to) const { to.LoadState(state_); }

 private:
  std::array<Biquad, N> sections_{};
  std::array<double, 2 * N> state_{};
};

// Baseline removal by subtracting a linear-phase baseline estimate: the input convolved with
// two cascaded boxcars of `length` samples (a triangle of 2*length-1 taps). Output at n is
// x[n - D] - baseline[n] with the exact delay D = length - 1 samples at every frequency, so
// waveform shape (ST segment, QRS) is not distorted. Costs O(1) per sample.
class MovingAverageBaseline {
 public:
  MovingAverageBaseline() = default;
  // Throws std::invalid_argument when length < 1.
  explicit MovingAverageBaseline(int length);

  double Step(double x);
  void ProcessBlock(std::span<const float> in, std::span<float> out);
  void Reset();
  // Exact group delay in samples (linear phase).
  int DelaySamples() const { return length_ - 1; }

  std::vector<double> SaveState() const;
  void LoadState(std::span<const double> state);

 private:
  int length_ = 1;
  std::vector<double> x_;   // last 2*length-1 inputs (ring)
  std::vector<double> m1_;  // last `length` first-stage means (ring)
  double sum1_ = 0, sum2_ = 0;
  int64_t n_ = 0;
};

}  // namespace vigil::filters
