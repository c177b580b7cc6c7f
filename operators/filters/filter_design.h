// Filter design: pure functions that turn specifications into coefficients. No state, no I/O;
// the streaming runner is BiquadCascade (biquad_cascade.h). Kept apart (as liquid-dsp does) so
// a design can be inspected, tested in the frequency domain and shared by many filter states.
//
// Every IIR design is an analog prototype mapped to the z-plane by the bilinear transform with
// frequency pre-warping, so the specified corner lands exactly on the requested frequency, and
// is returned as second-order sections (numerically safe for any order, unlike a single
// high-order polynomial). Frequencies are in Hz; `sample_rate_hz` is the rate the filter will
// run at.
//
// Errors: every design function throws std::invalid_argument naming the parameter and the value
// when a specification is impossible (order < 1, corner at or above Nyquist, low >= high, ...).
// Thread-safe (pure functions).
#pragma once

#include <Eigen/Core>
#include <complex>
#include <span>
#include <vector>

namespace vigil::filters {

// y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]   (a0 normalised to 1).
// A first-order section has b2 = a2 = 0.
struct Biquad {
  double b0 = 1, b1 = 0, b2 = 0;
  double a1 = 0, a2 = 0;
};

using Sections = std::vector<Biquad>;

// Butterworth low-pass of `order` (>= 1) with -3 dB at `cutoff_hz`, unity gain at DC.
Sections ButterworthLowPass(int order, double cutoff_hz, double sample_rate_hz);

// Butterworth high-pass of `order` (>= 1) with -3 dB at `cutoff_hz`, unity gain at Nyquist.
Sections ButterworthHighPass(int order, double cutoff_hz, double sample_rate_hz);
// Baseline-wander removal (respiration, electrode motion: below ~0.5 Hz) is this high-pass at
// order 2 and 0.5 Hz, which keeps the ST segment within the AHA's 0.67 Hz guidance for
// monitoring while removing the wander. For a linear-phase alternative with an exact delay see
// MovingAverageBaseline (biquad_cascade.h). Every design function takes (order, corners...,
// sample rate) in that order.

// Butterworth band-pass from the low-pass prototype of `order` (>= 1; the filter has 2*order
// poles, `order` sections), -3 dB at `low_hz` and `high_hz`, unity gain at their geometric mean.
Sections ButterworthBandPass(int order, double low_hz, double high_hz, double sample_rate_hz);

// Second-order notch (band-stop) at `notch_hz` (e.g. 50 Hz European mains, 60 Hz American) with
// quality factor `q` = notch_hz / (-3 dB bandwidth). Zeros on the unit circle at `notch_hz`
// (infinite depth there), unity gain at DC and Nyquist.
Sections Notch(double notch_hz, double q, double sample_rate_hz);

// Complex frequency response of the cascade at each frequency (Hz).
Eigen::ArrayXcd FrequencyResponse(std::span<const Biquad> sections,
                                  const Eigen::ArrayXd& frequencies_hz, double sample_rate_hz);

// |H(f)| in dB at one frequency.
double GainDb(std::span<const Biquad> sections, double frequency_hz, double sample_rate_hz);

// Group delay of the cascade in samples at `frequency_hz` (exact, from the coefficients).
double GroupDelaySamples(std::span<const Biquad> sections, double frequency_hz,
                         double sample_rate_hz);

// Largest pole radius of the cascade (< 1 means stable).
double MaxPoleRadius(std::span<const Biquad> sections);

}  // namespace vigil::filters
