// Deterministic random numbers for the simulator. Same seed -> same sequence on every platform
// (xoshiro256++ seeded through SplitMix64; no std:: distributions, whose output is
// implementation-defined), which is what makes `vigil simulate --seed S` byte-reproducible.
//
// Threading: an Rng is a value; one per patient and stream, used by one thread at a time.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace vigil::sim {

// SplitMix64 step: also used to derive independent seeds from (seed, patient, stream).
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A seed for a sub-stream, e.g. DeriveSeed(seed, patient_index, kEcgStream): streams do not
// share sequences, so adding a signal to a patient does not change the others.
inline uint64_t DeriveSeed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  uint64_t s = seed ^ (a * 0xD1B54A32D192ED03ull) ^ (b * 0x8CB92BA72F3D8DD7ull);
  SplitMix64(s);
  return SplitMix64(s);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 1) {
    uint64_t s = seed;
    for (auto& word : state_) word = SplitMix64(s);
  }

  uint64_t NextU64() {
    const uint64_t result = Rotl(state_[0] + state_[3], 23) + state_[0];
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 bits.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [lo, hi].
  int64_t Int(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Uniform() * static_cast<double>(hi - lo + 1));
  }
  bool Chance(double p) { return Uniform() < p; }

  // Standard normal by Box-Muller (exact enough for parameters; per-sample noise uses
  // NoiseSource, which is cheaper).
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = Uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const double u2 = Uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(6.283185307179586 * u2);
    has_spare_ = true;
    return r * std::cos(6.283185307179586 * u2);
  }
  double Normal(double mean, double sd) { return mean + sd * Normal(); }
  // Exponentially distributed waiting time with the given mean.
  double Exponential(double mean) { return -mean * std::log(1.0 - Uniform()); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> state_{};
  double spare_ = 0;
  bool has_spare_ = false;
};

// Per-sample Gaussian noise at a few nanoseconds a sample: one 64-bit draw gives five 12-bit
// indices into a table of standard-normal quantiles (the sum of two table values is smoother
// than one; 2 x 4096 levels is plenty for noise that is then quantised to ADC counts).
class NoiseSource {
 public:
  explicit NoiseSource(uint64_t seed) : rng_(seed) {}
  // Standard normal (variance 1).
  float Next() {
    if (left_ < 2) {
      bits_ = rng_.NextU64();
      left_ = 5;
    }
    const float a = Table()[bits_ & 4095u];
    const float b = Table()[(bits_ >> 12) & 4095u];
    bits_ >>= 24;
    left_ -= 2;
    return (a + b) * 0.70710678f;
  }

 private:
  static const std::array<float, 4096>& Table();
  Rng rng_;
  uint64_t bits_ = 0;
  int left_ = 0;
};

}  // namespace vigil::sim
