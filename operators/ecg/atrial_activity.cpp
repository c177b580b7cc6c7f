#include "operators/ecg/atrial_activity.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace vigil::ecg {

int AtrialSegment::Factor(double fs) {
  return std::max(1, static_cast<int>(std::ceil(fs / kMaxRateHz - 1e-9)));
}

int AtrialSegment::Length(double fs) {
  const double rate = fs / Factor(fs);
  const auto n = static_cast<int>((kLeadS - kEndS) * rate);
  return std::clamp(n, 1, static_cast<int>(kMaxSamples));
}

void AtrialSegment::Save(ops::SnapshotWriter& w) const {
  w.Put<uint8_t>(size);
  for (size_t k = 0; k < size; ++k) w.Put<float>(values[k]);
}

void AtrialSegment::Load(ops::SnapshotReader& r) {
  size = r.Get<uint8_t>();
  if (size > kMaxSamples) throw ops::SnapshotError("atrial segment: too long");
  values.fill(0);
  for (size_t k = 0; k < size; ++k) values[k] = r.Get<float>();
  Prepare();
}

void AtrialSegment::Prepare() {
  centred.fill(0);
  rms_second_difference = NAN;
  if (size == 0) return;
  if (size >= 4) {
    double e = 0;
    for (size_t j = 1; j + 1 < size; ++j) {
      const double d2 = static_cast<double>(values[j + 1]) - 2.0 * values[j] + values[j - 1];
      e += d2 * d2;
    }
    rms_second_difference = std::sqrt(e / static_cast<double>(size - 2));
  }
  // First difference: keeps the P wave's 5-15 Hz content, drops the T-wave tail and baseline
  // drift that are locked to the QRS in fibrillation too.
  const size_t n = size;
  std::array<float, kMaxSamples> v{};
  for (size_t k = 1; k < n; ++k) v[k] = values[k] - values[k - 1];
  v[0] = v[1];
  float mean = 0;
  for (size_t k = 0; k < n; ++k) mean += v[k];
  mean /= static_cast<float>(n);
  for (size_t k = 0; k < n; ++k) centred[k] = v[k] - mean;
}

double PWaveCoherence(std::span<const AtrialSegment* const> segments, size_t min_known) {
  size_t n = 0;
  for (const auto* s : segments) n = std::max<size_t>(n, s->size);
  if (n == 0) return NAN;
  // The known segments (prepared: differenced, mean-removed) and their sum.
  std::array<float, AtrialSegment::kMaxSamples> sum{};
  std::array<const float*, 64> x{};
  size_t known = 0;
  for (const auto* s : segments) {
    if (s->size != n || known == x.size()) continue;
    x[known] = s->centred.data();
    for (size_t k = 0; k < n; ++k) sum[k] += x[known][k];
    ++known;
  }
  if (known < std::max<size_t>(min_known, 3)) return NAN;
  // Correlation of each segment with the sum of the others. Four segments per pass: each
  // keeps its own sums in their own order (the result does not depend on the grouping), and
  // the four independent chains of additions overlap instead of waiting on each other.
  const auto correlation = [](double xy, double xx, double yy) {
    return xx > 0 && yy > 0 ? xy / std::sqrt(xx * yy) : 0.0;
  };
  double total = 0;
  size_t i = 0;
  for (; i + 4 <= known; i += 4) {
    std::array<double, 4> xy{}, xx{}, yy{};
    for (size_t k = 0; k < n; ++k) {
      for (size_t j = 0; j < 4; ++j) {
        const double a = x[i + j][k], b = sum[k] - x[i + j][k];
        xy[j] += a * b;
        xx[j] += a * a;
        yy[j] += b * b;
      }
    }
    for (size_t j = 0; j < 4; ++j) total += correlation(xy[j], xx[j], yy[j]);
  }
  for (; i < known; ++i) {
    double xy = 0, xx = 0, yy = 0;
    for (size_t k = 0; k < n; ++k) {
      const double a = x[i][k], b = sum[k] - x[i][k];
      xy += a * b;
      xx += a * a;
      yy += b * b;
    }
    total += correlation(xy, xx, yy);
  }
  return total / static_cast<double>(known);
}

double PWaveRateLock(std::span<const AtrialSegment* const> segments, std::span<const float> rr_s) {
  size_t n = 0;
  for (const auto* s : segments) n = std::max<size_t>(n, s->size);
  if (n == 0) return NAN;
  std::array<std::pair<float, const AtrialSegment*>, 64> known{};
  size_t m = 0;
  for (size_t i = 0; i < segments.size() && i < rr_s.size() && m < known.size(); ++i) {
    if (segments[i]->size == n) known[m++] = {rr_s[i], segments[i]};
  }
  if (m < 6) return NAN;
  std::sort(known.begin(), known.begin() + static_cast<ptrdiff_t>(m),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::array<double, AtrialSegment::kMaxSamples> shorter{}, longer{};
  for (size_t j = 0; j < m; ++j) {
    auto& sum = j < m / 2 ? shorter : longer;
    for (size_t k = 0; k < n; ++k) sum[k] += known[j].second->centred[k];
  }
  double xy = 0, xx = 0, yy = 0;
  for (size_t k = 0; k < n; ++k) {
    xy += shorter[k] * longer[k];
    xx += shorter[k] * shorter[k];
    yy += longer[k] * longer[k];
  }
  return xx > 0 && yy > 0 ? xy / std::sqrt(xx * yy) : 0.0;
}

}  // namespace vigil::ecg
