// A 1024-entry sine table driven by 32-bit phase accumulators: oscillators for baseline wander,
// mains, f-waves and VF at one table read per sample, bit-identical on every platform.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace vigil::sim {

inline const std::array<float, 1024>& SineTable() {
  static const std::array<float, 1024> table = [] {
    std::array<float, 1024> t{};
    for (size_t i = 0; i < t.size(); ++i) {
      t[i] = static_cast<float>(
          std::sin(2.0 * 3.14159265358979323846 * static_cast<double>(i) / 1024.0));
    }
    return t;
  }();
  return table;
}

inline float SineOf(uint32_t phase) {
  return SineTable()[phase >> 22];
}

// Phase increment per sample for `hz` at `rate_hz` samples per second.
inline uint32_t PhaseIncrement(double hz, double rate_hz) {
  return static_cast<uint32_t>(std::llround(hz / rate_hz * 4294967296.0) & 0xFFFFFFFFll);
}

}  // namespace vigil::sim
