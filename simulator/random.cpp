#include "simulator/random.h"

namespace vigil::sim {

const std::array<float, 4096>& NoiseSource::Table() {
  // Quantiles of N(0,1) at (i + 0.5) / 4096, by bisection on erfc: computed once, the same on
  // every platform to the float precision stored.
  static const std::array<float, 4096> table = [] {
    std::array<float, 4096> t{};
    for (size_t i = 0; i < t.size(); ++i) {
      const double p = (static_cast<double>(i) + 0.5) / 4096.0;
      double lo = -9, hi = 9;
      for (int k = 0; k < 80; ++k) {
        const double mid = 0.5 * (lo + hi);
        const double cdf = 0.5 * std::erfc(-mid / std::sqrt(2.0));
        (cdf < p ? lo : hi) = mid;
      }
      t[i] = static_cast<float>(0.5 * (lo + hi));
    }
    return t;
  }();
  return table;
}

}  // namespace vigil::sim
