// Filter designs checked in the frequency domain (corner, stopband, notch depth, passband) and
// the streaming runner checked against itself (block == sample by sample, reset, snapshot),
// the unrolled runner against the streaming one, and the order statistic against nth_element.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "operators/filters/biquad_cascade.h"
#include "operators/filters/filter_design.h"
#include "operators/filters/order_statistic.h"

namespace {

using namespace vigil::filters;

std::vector<float> Noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0, 1);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

class ButterworthOrders : public ::testing::TestWithParam<std::tuple<int, double>> {};

TEST_P(ButterworthOrders, LowPassCornerPassbandStopband) {
  const auto [order, fs] = GetParam();
  const auto lp = ButterworthLowPass(order, 40, fs);
  EXPECT_EQ(lp.size(), static_cast<size_t>((order + 1) / 2));
  EXPECT_NEAR(GainDb(lp, 40, fs), -3.0103, 0.01);
  EXPECT_NEAR(GainDb(lp, 0, fs), 0, 1e-9);
  EXPECT_NEAR(GainDb(lp, 5, fs), 0, 0.1);
  // Butterworth: at least 6 dB/octave per order above the corner (bilinear only adds more).
  EXPECT_LT(GainDb(lp, std::min(80.0, fs / 2 - 1), fs), -6.0 * order + 3);
  EXPECT_LT(MaxPoleRadius(lp), 1.0);
}

TEST_P(ButterworthOrders, HighPassCornerAndStopband) {
  const auto [order, fs] = GetParam();
  const auto hp = ButterworthHighPass(order, 0.5, fs);
  EXPECT_NEAR(GainDb(hp, 0.5, fs), -3.0103, 0.01);
  EXPECT_NEAR(GainDb(hp, 10, fs), 0, 0.02);
  EXPECT_LT(GainDb(hp, 0.25, fs), -6.0 * order + 3);
  EXPECT_LT(MaxPoleRadius(hp), 1.0);
}

TEST_P(ButterworthOrders, BandPassCornersAndCentre) {
  const auto [order, fs] = GetParam();
  const auto bp = ButterworthBandPass(order, 5, 15, fs);
  EXPECT_EQ(bp.size(), static_cast<size_t>(order));
  EXPECT_NEAR(GainDb(bp, 5, fs), -3.0103, 0.01);
  EXPECT_NEAR(GainDb(bp, 15, fs), -3.0103, 0.01);
  EXPECT_NEAR(GainDb(bp, std::sqrt(75.0), fs), 0, 0.01);
  EXPECT_LT(GainDb(bp, 0.5, fs), -20.0 * order);  // baseline wander
  EXPECT_LT(GainDb(bp, 50, fs), -6.0 * order);    // mains
  EXPECT_LT(MaxPoleRadius(bp), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Rates, ButterworthOrders,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4, 7),
                                            ::testing::Values(125.0, 360.0, 1000.0)));

TEST(Notch, DeepAtMainsFlatElsewhere) {
  for (const double fs : {125.0, 250.0, 360.0, 500.0, 1000.0}) {
    const auto notch = Notch(50, 10, fs);
    EXPECT_LT(GainDb(notch, 50, fs), -30) << fs;
    EXPECT_LT(GainDb(notch, 50.05, fs), -20) << fs;
    EXPECT_LT(GainDb(notch, 49.8, fs), -9) << fs;  // European grid tolerance +-0.2 Hz
    if (fs >= 360) {  // about -3 dB at f0 (1 + 1/2Q): pre-warping is exact at f0 only
      EXPECT_GT(GainDb(notch, 50 * (1 + 0.5 / 10), fs), -4) << fs;
      EXPECT_LT(GainDb(notch, 50 * (1 + 0.5 / 10), fs), -2) << fs;
    }
    EXPECT_NEAR(GainDb(notch, 0, fs), 0, 1e-9) << fs;
    EXPECT_NEAR(GainDb(notch, 20, fs), 0, 0.2) << fs;
    EXPECT_LT(MaxPoleRadius(notch), 1.0) << fs;
  }
  // Parameterised frequency: a 60 Hz notch leaves 50 Hz alone.
  EXPECT_LT(GainDb(Notch(60, 10, 360), 60, 360), -30);
  EXPECT_GT(GainDb(Notch(60, 10, 360), 50, 360), -1.5);
}

TEST(Notch, RemovesMainsSineInTime) {
  const double fs = 360;
  BiquadCascade notch(Notch(50, 10, fs));
  double in_energy = 0, out_energy = 0;
  for (int n = 0; n < 20 * 360; ++n) {
    const double x = std::sin(2 * std::numbers::pi * 50 * n / fs);
    const double y = notch.Step(x);
    if (n >= 10 * 360) {  // after the transient
      in_energy += x * x;
      out_energy += y * y;
    }
  }
  EXPECT_LT(10 * std::log10(out_energy / in_energy), -30);
}

TEST(Design, RejectsImpossibleSpecifications) {
  EXPECT_THROW(ButterworthLowPass(0, 10, 360), std::invalid_argument);
  EXPECT_THROW(ButterworthLowPass(2, 180, 360), std::invalid_argument);
  EXPECT_THROW(ButterworthHighPass(2, -1, 360), std::invalid_argument);
  EXPECT_THROW(ButterworthBandPass(2, 15, 5, 360), std::invalid_argument);
  EXPECT_THROW(Notch(50, 10, 100), std::invalid_argument);
  EXPECT_THROW(Notch(50, 0, 360), std::invalid_argument);
}

TEST(GroupDelay, MatchesMeasuredDelayOfAToneBurstEnvelope) {
  // A low-pass of order 1 at fs/4 has a known, small delay; check the formula against the
  // phase of the response measured in time.
  const double fs = 360, f = 10;
  const auto bp = ButterworthBandPass(2, 5, 15, fs);
  const double gd = GroupDelaySamples(bp, f, fs);
  // Phase slope by finite differences of the response.
  const double df = 1e-3;
  Eigen::ArrayXd freqs(2);
  freqs << f - df, f + df;
  const auto h = FrequencyResponse(bp, freqs, fs);
  double dphi = std::arg(h[1] / h[0]);
  const double numeric = -dphi / (2 * std::numbers::pi * 2 * df / fs);
  EXPECT_NEAR(gd, numeric, 1e-3);
  EXPECT_GT(gd, 0);
}

TEST(OrderStatistic, SameValueAsNthElementAndInputUntouched) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0, 1);
  for (int trial = 0; trial < 3000; ++trial) {
    const size_t n = 1 + rng() % (trial % 2 ? 40 : 1600);
    std::vector<float> x(n);
    for (auto& v : x) {
      switch (trial % 5) {
        case 0:
          v = static_cast<float>(rng() % 5);
          break;  // many ties
        case 1:
          v = normal(rng);
          break;
        case 2:
          v = 0.005f * static_cast<float>(static_cast<int>(rng() % 200) - 100);
          break;
        case 3:
          v = std::ldexp(normal(rng), static_cast<int>(rng() % 80) - 40);
          break;  // wide
        default:
          v = rng() % 50 ? 0.01f * normal(rng) : 20 * normal(rng);
          break;  // spiky
      }
    }
    const size_t k = rng() % n;
    std::vector<float> sorted = x;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
    const std::vector<float> before = x;
    ASSERT_EQ(OrderStatistic(x, k), sorted[k]) << "trial " << trial << " n " << n << " k " << k;
    ASSERT_EQ(x, before);
  }
}

TEST(Extremes, SameAsMinmaxElementForEveryLengthAndPosition) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0, 1);
  for (size_t n = 1; n < 40; ++n) {
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<float> x(n);
      for (auto& v : x) v = normal(rng);
      x[rng() % n] = -7;  // the extremes anywhere, the tail past the last full vector included
      x[rng() % n] = 9;
      const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
      EXPECT_EQ(Extremes(x), std::make_pair(*lo, *hi)) << "n " << n;
    }
  }
}

TEST(OrderStatistic, ExtremeRangesEqualValuesAndBadRank) {
  std::vector<float> huge = {3e38f, -3e38f, 1, 2, 0};
  for (int i = 0; i < 60; ++i) huge.push_back(static_cast<float>(i) * 1e37f);
  std::vector<float> sorted = huge;
  std::sort(sorted.begin(), sorted.end());
  for (size_t k = 0; k < huge.size(); ++k) EXPECT_EQ(OrderStatistic(huge, k), sorted[k]);
  std::vector<float> tiny;
  for (int i = 0; i < 50; ++i) tiny.push_back(static_cast<float>(i % 3) * 1e-45f);
  sorted = tiny;
  std::sort(sorted.begin(), sorted.end());
  for (size_t k = 0; k < tiny.size(); ++k) EXPECT_EQ(OrderStatistic(tiny, k), sorted[k]);
  const std::vector<float> same(100, 0.25f);
  EXPECT_EQ(OrderStatistic(same, 50), 0.25f);
  EXPECT_THROW(OrderStatistic(same, 100), std::invalid_argument);
}

TEST(FixedBiquadCascade, BitIdenticalToTheCascadeItWasCopiedFrom) {
  // Baseline high-pass, mains notch and low-pass: the QRS detector's conditioning.
  Sections sections = ButterworthHighPass(2, 0.5, 360);
  for (const auto& s : Notch(50, 10, 360)) sections.push_back(s);
  for (const auto& s : ButterworthLowPass(2, 40, 360)) sections.push_back(s);
  ASSERT_EQ(sections.size(), 3u);
  const auto x = Noise(3000, 7);
  BiquadCascade reference(sections);
  BiquadCascade running(sections);
  for (size_t first = 0; first < x.size(); first += 256) {
    FixedBiquadCascade<3> fixed(running);
    for (size_t i = first; i < std::min(first + 256, x.size()); ++i) {
      const double want = reference.Step(x[i]);
      const double got = fixed.Step(x[i]);
      ASSERT_EQ(std::bit_cast<uint64_t>(got), std::bit_cast<uint64_t>(want)) << "sample " << i;
    }
    fixed.StoreState(running);  // the next block continues from here
  }
  const auto want = reference.SaveState();
  const auto got = running.SaveState();
  EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin(), got.end()));
  EXPECT_THROW(FixedBiquadCascade<2>{running}, std::invalid_argument);
}

TEST(BiquadCascade, BlockEqualsSampleBySampleAndResetRestarts) {
  const auto x = Noise(5000, 1);
  BiquadCascade whole(ButterworthBandPass(3, 5, 15, 360));
  std::vector<float> y_block(x.size());
  whole.ProcessBlock(x, y_block);

  BiquadCascade pieces(ButterworthBandPass(3, 5, 15, 360));
  std::vector<float> y_pieces;
  size_t pos = 0, len = 1;
  while (pos < x.size()) {
    const size_t n = std::min(len, x.size() - pos);
    std::vector<float> out(n);
    pieces.ProcessBlock(std::span(x).subspan(pos, n), out);
    y_pieces.insert(y_pieces.end(), out.begin(), out.end());
    pos += n;
    len = len * 3 % 97 + 1;  // irregular chunk sizes
  }
  EXPECT_EQ(y_block, y_pieces);

  whole.Reset();
  std::vector<float> again(x.size());
  whole.ProcessBlock(x, again);
  EXPECT_EQ(again, y_block);
}

TEST(BiquadCascade, SavedStateContinuesExactly) {
  const auto x = Noise(2000, 2);
  BiquadCascade a(ButterworthHighPass(2, 0.5, 250));
  std::vector<float> first(1000), rest_a(1000), rest_b(1000);
  a.ProcessBlock(std::span(x).first(1000), first);
  BiquadCascade b(ButterworthHighPass(2, 0.5, 250));
  b.LoadState(std::vector<double>(a.SaveState().begin(), a.SaveState().end()));
  a.ProcessBlock(std::span(x).subspan(1000), rest_a);
  b.ProcessBlock(std::span(x).subspan(1000), rest_b);
  EXPECT_EQ(rest_a, rest_b);
  EXPECT_THROW(b.LoadState(std::vector<double>(3)), std::invalid_argument);
}

TEST(BiquadCascade, StableOnLongInputAndRemovesDc) {
  BiquadCascade hp(ButterworthHighPass(2, 0.5, 1000));
  double last = 0;
  for (int n = 0; n < 60 * 1000; ++n) last = hp.Step(1.0 + 0.0 * n);
  EXPECT_LT(std::abs(last), 1e-6);  // a step decays: no DC passes, nothing grows
}

TEST(MovingAverageBaseline, RemovesRampAndKeepsShapeWithExactDelay) {
  const int length = 101;
  MovingAverageBaseline ma(length);
  std::vector<double> x(3000), y(3000);
  for (size_t n = 0; n < x.size(); ++n) {
    x[n] = 0.001 * static_cast<double>(n);  // baseline drift (a ramp)
    if (n == 1500) x[n] += 1.0;             // an impulse "QRS"
    y[n] = ma.Step(x[n]);
  }
  // Linear phase: the impulse appears exactly DelaySamples() later, ramp removed.
  const auto d = static_cast<size_t>(ma.DelaySamples());
  EXPECT_NEAR(y[1500 + d], 1.0 - 1.0 / length, 1e-9);  // centre tap of the triangle
  EXPECT_NEAR(y[1200], 0.0, 1e-9);
  // Block == sample by sample.
  MovingAverageBaseline b(length);
  std::vector<float> xf(x.begin(), x.end()), yf(x.size());
  b.ProcessBlock(xf, yf);
  EXPECT_NEAR(yf[1500 + d], y[1500 + d], 1e-4);
  EXPECT_THROW(MovingAverageBaseline(0), std::invalid_argument);
}

}  // namespace
