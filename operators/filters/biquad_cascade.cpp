#include "operators/filters/biquad_cascade.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace vigil::filters {

BiquadCascade::BiquadCascade(Sections sections)
    : sections_(std::move(sections)), state_(2 * sections_.size(), 0.0) {}

void BiquadCascade::ProcessBlock(std::span<const float> in, std::span<float> out) {
  if (in.size() != out.size()) {
    throw std::invalid_argument(fmt::format(
        "BiquadCascade::ProcessBlock: in has {} samples, out {}", in.size(), out.size()));
  }
  for (size_t n = 0; n < in.size(); ++n) out[n] = static_cast<float>(Step(in[n]));
}

void BiquadCascade::Reset() {
  std::fill(state_.begin(), state_.end(), 0.0);
}

double BiquadCascade::GroupDelaySamples(double frequency_hz, double sample_rate_hz) const {
  return filters::GroupDelaySamples(sections_, frequency_hz, sample_rate_hz);
}

void BiquadCascade::LoadState(std::span<const double> state) {
  if (state.size() != state_.size()) {
    throw std::invalid_argument(fmt::format("BiquadCascade::LoadState: {} values for {} sections",
                                            state.size(), sections_.size()));
  }
  std::copy(state.begin(), state.end(), state_.begin());
}

MovingAverageBaseline::MovingAverageBaseline(int length) : length_(length) {
  if (length < 1) {
    throw std::invalid_argument(
        fmt::format("MovingAverageBaseline: length = {}: must be >= 1", length));
  }
  Reset();
}

void MovingAverageBaseline::Reset() {
  x_.assign(static_cast<size_t>(2 * length_ - 1), 0.0);
  m1_.assign(static_cast<size_t>(length_), 0.0);
  sum1_ = sum2_ = 0;
  n_ = 0;
}

double MovingAverageBaseline::Step(double x) {
  const auto nx = static_cast<int64_t>(x_.size());
  const auto nm = static_cast<int64_t>(m1_.size());
  // First boxcar over the last `length` inputs.
  const size_t xi = static_cast<size_t>(n_ % nx);
  const double leaving_x = x_[static_cast<size_t>((n_ + nx - length_) % nx)];
  x_[xi] = x;
  sum1_ += x - (n_ >= length_ ? leaving_x : 0.0);
  const double m1 = sum1_ / length_;
  // Second boxcar over the last `length` first-stage means.
  const size_t mi = static_cast<size_t>(n_ % nm);
  const double leaving_m = m1_[mi];
  m1_[mi] = m1;
  sum2_ += m1 - (n_ >= length_ ? leaving_m : 0.0);
  const double baseline = sum2_ / length_;
  // x[n - D], D = length - 1: the centre of the triangle.
  const double delayed = x_[static_cast<size_t>((n_ + nx - (length_ - 1)) % nx)];
  ++n_;
  return delayed - baseline;
}

void MovingAverageBaseline::ProcessBlock(std::span<const float> in, std::span<float> out) {
  if (in.size() != out.size()) {
    throw std::invalid_argument(fmt::format(
        "MovingAverageBaseline::ProcessBlock: in has {} samples, out {}", in.size(), out.size()));
  }
  for (size_t n = 0; n < in.size(); ++n) out[n] = static_cast<float>(Step(in[n]));
}

std::vector<double> MovingAverageBaseline::SaveState() const {
  std::vector<double> s = x_;
  s.insert(s.end(), m1_.begin(), m1_.end());
  s.push_back(sum1_);
  s.push_back(sum2_);
  s.push_back(static_cast<double>(n_));
  return s;
}

void MovingAverageBaseline::LoadState(std::span<const double> state) {
  if (state.size() != x_.size() + m1_.size() + 3) {
    throw std::invalid_argument(fmt::format(
        "MovingAverageBaseline::LoadState: {} values for length {}", state.size(), length_));
  }
  std::copy_n(state.begin(), x_.size(), x_.begin());
  std::copy_n(state.begin() + static_cast<std::ptrdiff_t>(x_.size()), m1_.size(), m1_.begin());
  const size_t k = x_.size() + m1_.size();
  sum1_ = state[k];
  sum2_ = state[k + 1];
  n_ = static_cast<int64_t>(state[k + 2]);
}

}  // namespace vigil::filters
