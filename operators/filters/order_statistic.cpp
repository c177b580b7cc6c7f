#include "operators/filters/order_statistic.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace vigil::filters {
float OrderStatistic(std::span<const float> values, size_t k) {
  if (k >= values.size()) {
    throw std::invalid_argument(
        fmt::format("OrderStatistic: k = {} for {} values", k, values.size()));
  }
  constexpr int kBuckets = 64;
  constexpr size_t kSmall = 32;  // selected directly
  static thread_local std::vector<float> kept;
  static thread_local std::vector<uint8_t> buckets;
  // Candidates: values whose rank may be k (k counts within them). Each round keeps the
  // bucket holding the k-th one; the minimum and the maximum fall in different buckets, so
  // every round drops values.
  std::span<const float> candidates = values;
  auto [lo, hi] = Extremes(candidates);
  while (candidates.size() > kSmall) {
    if (!(lo < hi)) return lo;  // all equal
    const float scale = static_cast<float>(kBuckets) / (hi - lo);
    if (!std::isfinite(scale) || !std::isfinite(hi - lo)) break;  // extreme range: select directly
    // Bucket of each value, monotonic in the value (each step rounds monotonically): every
    // value in a lower bucket is smaller than every value in a higher one. One loop without
    // branches (vectorised), used by the two below.
    buckets.resize(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) {
      buckets[i] = static_cast<uint8_t>(
          std::min(static_cast<int>((candidates[i] - lo) * scale), kBuckets - 1));
    }
    // Four interleaved histograms: neighbouring samples often share a bucket, and a single
    // counter would make each increment wait for the previous one.
    constexpr size_t kHistograms = 4;
    std::array<std::array<uint32_t, kBuckets>, kHistograms> counts{};
    size_t i = 0;
    for (; i + kHistograms <= buckets.size(); i += kHistograms) {
      for (size_t j = 0; j < kHistograms; ++j) ++counts[j][buckets[i + j]];
    }
    for (; i < buckets.size(); ++i) ++counts[0][buckets[i]];
    uint8_t target = 0;
    for (;; ++target) {
      size_t in_bucket = 0;
      for (const auto& c : counts) in_bucket += c[target];
      if (k < in_bucket) break;
      k -= in_bucket;
    }
    // The target bucket's values, gathered without a branch per value (in place once the
    // candidates are in `kept`: the write position never passes the read position).
    kept.resize(std::max(kept.size(), candidates.size()));
    size_t n = 0;
    for (size_t j = 0; j < candidates.size(); ++j) {
      kept[n] = candidates[j];
      n += buckets[j] == target ? 1 : 0;
    }
    candidates = std::span<const float>(kept.data(), n);
    std::tie(lo, hi) = Extremes(candidates);
  }
  if (candidates.data() == kept.data()) {
    kept.resize(candidates.size());
  } else {
    kept.assign(candidates.begin(), candidates.end());
  }
  const auto nth = kept.begin() + static_cast<std::ptrdiff_t>(k);
  std::nth_element(kept.begin(), nth, kept.end());
  return *nth;
}

std::pair<float, float> Extremes(std::span<const float> values) {
  // Four lanes (a GCC/Clang vector type; SSE on x86-64): the compiler does not vectorise
  // std::min/std::max folds itself. `v < lo ? v : lo` is std::min(lo, v) lane by lane.
  using Float4 = float __attribute__((vector_size(4 * sizeof(float))));
  const float first = values[0];
  Float4 lo = {first, first, first, first}, hi = lo;
  size_t i = 0;
  for (; i + 4 <= values.size(); i += 4) {
    Float4 v;
    std::memcpy(&v, values.data() + i, sizeof v);
    lo = v < lo ? v : lo;
    hi = hi < v ? v : hi;
  }
  float min_v = std::min({lo[0], lo[1], lo[2], lo[3]});
  float max_v = std::max({hi[0], hi[1], hi[2], hi[3]});
  for (; i < values.size(); ++i) {
    min_v = std::min(min_v, values[i]);
    max_v = std::max(max_v, values[i]);
  }
  return {min_v, max_v};
}

}  // namespace vigil::filters
