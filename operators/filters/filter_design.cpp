#include "operators/filters/filter_design.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace vigil::filters {
namespace {

using Complex = std::complex<double>;

[[noreturn]] void Invalid(const char* what, double value, const char* why) {
  throw std::invalid_argument(fmt::format("{} = {}: {}", what, value, why));
}

void CheckRate(double fs) {
  if (!(fs > 0) || !std::isfinite(fs)) Invalid("sample_rate_hz", fs, "must be > 0");
}
void CheckCorner(const char* what, double f, double fs) {
  if (!(f > 0 && f < fs / 2)) Invalid(what, f, "must be in (0, sample_rate/2)");
}
void CheckOrder(int order) {
  if (order < 1 || order > 32) Invalid("order", order, "must be in [1, 32]");
}

// Pre-warped analog angular frequency whose bilinear image is `f` (Hz).
double Prewarp(double f, double fs) {
  return 2 * fs * std::tan(std::numbers::pi * f / fs);
}

Complex Bilinear(Complex s, double fs) {
  return (2 * fs + s) / (2 * fs - s);
}

// Normalised analog Butterworth low-pass poles (left half plane, unit circle).
std::vector<Complex> ButterworthPrototype(int order) {
  std::vector<Complex> poles;
  for (int k = 0; k < order; ++k) {
    const double theta = std::numbers::pi * (2.0 * k + order + 1) / (2.0 * order);
    poles.push_back(std::polar(1.0, theta));
  }
  return poles;
}

// Groups z-plane poles and zeros into sections: each conjugate pair of poles becomes one
// section; a lone real pole is paired with the next real pole or stays first-order. Zeros are
// handed out two per section in the order given (all real or conjugate pairs by construction).
Sections ToSections(std::vector<Complex> zeros, std::vector<Complex> poles) {
  std::vector<std::pair<Complex, Complex>> pole_pairs;
  std::vector<double> real_poles;
  for (const auto& p : poles) {
    if (std::abs(p.imag()) < 1e-12) {
      real_poles.push_back(p.real());
    } else if (p.imag() > 0) {
      pole_pairs.push_back({p, std::conj(p)});
    }
  }
  for (size_t i = 0; i + 1 < real_poles.size(); i += 2) {
    pole_pairs.push_back({real_poles[i], real_poles[i + 1]});
  }
  const bool lone_real = real_poles.size() % 2 == 1;
  // Zeros: conjugate pairs stay together; real zeros are taken in order.
  std::vector<std::pair<Complex, Complex>> zero_pairs;
  std::vector<double> real_zeros;
  for (const auto& z : zeros) {
    if (std::abs(z.imag()) < 1e-12) {
      real_zeros.push_back(z.real());
    } else if (z.imag() > 0) {
      zero_pairs.push_back({z, std::conj(z)});
    }
  }
  for (size_t i = 0; i + 1 < real_zeros.size(); i += 2) {
    zero_pairs.push_back({real_zeros[i], real_zeros[i + 1]});
  }
  Sections sections;
  size_t zi = 0;
  for (const auto& [p1, p2] : pole_pairs) {
    Biquad s;
    s.a1 = -(p1 + p2).real();
    s.a2 = (p1 * p2).real();
    if (zi < zero_pairs.size()) {
      const auto [z1, z2] = zero_pairs[zi++];
      s.b1 = -(z1 + z2).real();
      s.b2 = (z1 * z2).real();
    }
    sections.push_back(s);
  }
  if (lone_real) {
    Biquad s;
    s.a1 = -real_poles.back();
    if (real_zeros.size() % 2 == 1) s.b1 = -real_zeros.back();
    sections.push_back(s);
  }
  return sections;
}

Complex ResponseAt(std::span<const Biquad> sections, double w) {
  const Complex z1 = std::polar(1.0, -w);
  const Complex z2 = z1 * z1;
  Complex h = 1;
  for (const auto& s : sections) {
    h *= (s.b0 + s.b1 * z1 + s.b2 * z2) / (1.0 + s.a1 * z1 + s.a2 * z2);
  }
  return h;
}

// Scales the first section so that |H| = 1 at angular frequency `w` (rad/sample).
void NormaliseGain(Sections& sections, double w) {
  const double g = std::abs(ResponseAt(sections, w));
  sections.front().b0 /= g;
  sections.front().b1 /= g;
  sections.front().b2 /= g;
}

}  // namespace

Sections ButterworthLowPass(int order, double cutoff_hz, double fs) {
  CheckOrder(order);
  CheckRate(fs);
  CheckCorner("cutoff_hz", cutoff_hz, fs);
  const double wc = Prewarp(cutoff_hz, fs);
  std::vector<Complex> poles, zeros;
  for (const auto& p : ButterworthPrototype(order)) {
    poles.push_back(Bilinear(p * wc, fs));
    zeros.push_back(-1.0);  // analog zeros at infinity map to Nyquist
  }
  auto sections = ToSections(zeros, poles);
  NormaliseGain(sections, 0);
  return sections;
}

Sections ButterworthHighPass(int order, double cutoff_hz, double fs) {
  CheckOrder(order);
  CheckRate(fs);
  CheckCorner("cutoff_hz", cutoff_hz, fs);
  const double wc = Prewarp(cutoff_hz, fs);
  std::vector<Complex> poles, zeros;
  for (const auto& p : ButterworthPrototype(order)) {
    poles.push_back(Bilinear(wc / p, fs));  // s -> wc / s
    zeros.push_back(1.0);                   // analog zeros at s = 0 map to DC
  }
  auto sections = ToSections(zeros, poles);
  NormaliseGain(sections, std::numbers::pi);
  return sections;
}

Sections ButterworthBandPass(int order, double low_hz, double high_hz, double fs) {
  CheckOrder(order);
  CheckRate(fs);
  CheckCorner("low_hz", low_hz, fs);
  CheckCorner("high_hz", high_hz, fs);
  if (!(low_hz < high_hz)) Invalid("low_hz", low_hz, "must be below high_hz");
  const double w1 = Prewarp(low_hz, fs);
  const double w2 = Prewarp(high_hz, fs);
  const double w0 = std::sqrt(w1 * w2);
  const double bw = w2 - w1;
  std::vector<Complex> poles, zeros;
  // s -> (s^2 + w0^2) / (s bw): each prototype pole p gives the roots of s^2 - p bw s + w0^2.
  for (const auto& p : ButterworthPrototype(order)) {
    const Complex pb = p * bw;
    const Complex root = std::sqrt(pb * pb - 4.0 * w0 * w0);
    poles.push_back(Bilinear((pb + root) / 2.0, fs));
    poles.push_back(Bilinear((pb - root) / 2.0, fs));
    zeros.push_back(1.0);
    zeros.push_back(-1.0);
  }
  // Pair one DC zero with one Nyquist zero in every section: (1 - z^-2).
  std::vector<Complex> interleaved;
  for (int k = 0; k < order; ++k) {
    interleaved.push_back(1.0);
    interleaved.push_back(-1.0);
  }
  auto sections = ToSections(interleaved, poles);
  NormaliseGain(sections, 2 * std::atan(w0 / (2 * fs)));
  return sections;
}

Sections Notch(double notch_hz, double q, double fs) {
  CheckRate(fs);
  CheckCorner("notch_hz", notch_hz, fs);
  if (!(q > 0.1 && q < 1000)) Invalid("q", q, "must be in (0.1, 1000)");
  const double w0 = Prewarp(notch_hz, fs);
  // H(s) = (s^2 + w0^2) / (s^2 + (w0/q) s + w0^2)
  const Complex disc = std::sqrt(Complex((w0 / q) * (w0 / q) - 4 * w0 * w0));
  const std::vector<Complex> poles = {Bilinear((-w0 / q + disc) / 2.0, fs),
                                      Bilinear((-w0 / q - disc) / 2.0, fs)};
  const std::vector<Complex> zeros = {Bilinear(Complex(0, w0), fs), Bilinear(Complex(0, -w0), fs)};
  auto sections = ToSections(zeros, poles);
  NormaliseGain(sections, 0);
  return sections;
}

Eigen::ArrayXcd FrequencyResponse(std::span<const Biquad> sections,
                                  const Eigen::ArrayXd& frequencies_hz, double fs) {
  Eigen::ArrayXcd h(frequencies_hz.size());
  for (Eigen::Index i = 0; i < frequencies_hz.size(); ++i) {
    h[i] = ResponseAt(sections, 2 * std::numbers::pi * frequencies_hz[i] / fs);
  }
  return h;
}

double GainDb(std::span<const Biquad> sections, double frequency_hz, double fs) {
  return 20 * std::log10(std::abs(ResponseAt(sections, 2 * std::numbers::pi * frequency_hz / fs)));
}

double GroupDelaySamples(std::span<const Biquad> sections, double frequency_hz, double fs) {
  // For a polynomial P(z^-1) = sum c_k z^-k the delay is Re(sum k c_k e^{-jwk} / P(e^{-jw}));
  // the section's delay is that of its numerator minus that of its denominator.
  const double w = 2 * std::numbers::pi * frequency_hz / fs;
  const Complex z1 = std::polar(1.0, -w);
  const Complex z2 = z1 * z1;
  auto poly_delay = [&](double c0, double c1, double c2) {
    const Complex p = c0 + c1 * z1 + c2 * z2;
    const Complex dp = c1 * z1 + 2.0 * c2 * z2;
    return (dp / p).real();
  };
  double delay = 0;
  for (const auto& s : sections) {
    delay += poly_delay(s.b0, s.b1, s.b2) - poly_delay(1.0, s.a1, s.a2);
  }
  return delay;
}

double MaxPoleRadius(std::span<const Biquad> sections) {
  double r = 0;
  for (const auto& s : sections) {
    // roots of z^2 + a1 z + a2
    const Complex disc = std::sqrt(Complex(s.a1 * s.a1 - 4 * s.a2));
    r = std::max({r, std::abs((-s.a1 + disc) / 2.0), std::abs((-s.a1 - disc) / 2.0)});
  }
  return r;
}

}  // namespace vigil::filters
