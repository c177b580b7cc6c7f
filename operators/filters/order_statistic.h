// Order statistics (medians, percentiles) of float arrays, for detectors that take one per
// beat or per window of every patient (the baseline median of a beat, the 5-95 % amplitude
// range of a VF window).
//
// OrderStatistic returns the value std::nth_element would place at index k, without
// reordering the input and mostly without nth_element's branch on every comparison (on signal
// samples those branches are unpredictable: that made the selection the costliest step of
// the beat classifier). It counts the values into buckets of equal width between the minimum
// and the maximum - a monotonic map, so the bucket holding the k-th smallest value is known
// from the counts - and selects among that bucket's values only. Equal values can differ only
// in the sign of a zero; which zero is returned may then differ from nth_element's.
//
// Pure (scratch storage is thread-local); `values` must hold no NaN. Throws
// std::invalid_argument when k >= values.size().
#pragma once

#include <cstddef>
#include <span>
#include <utility>

namespace vigil::filters {

float OrderStatistic(std::span<const float> values, size_t k);

// The smallest and the largest value of `values` (not empty, no NaN), in vector registers.
// Equal to what std::minmax_element finds except, among zeros of both signs, in which zero.
std::pair<float, float> Extremes(std::span<const float> values);

}  // namespace vigil::filters
