// Signals as operators see them: evenly spaced samples in physical units with device time.
// The pipeline turns vigil.v1.SignalFrame (raw integers, gain, offset) into these chunks; the
// operators never see protobuf.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "operators/core/time.h"

namespace vigil::ops {

// Mirrors vigil.v1.SignalKind (same numbering) without depending on protobuf.
enum class Signal : uint8_t {
  kUnknown = 0,
  kEcg = 1,                 // mV
  kAirwayPressure = 2,      // cmH2O
  kFlow = 3,                // L/min, inspiration positive
  kCo2Waveform = 4,         // mmHg
  kTranscutaneousCo2 = 5,   // mmHg
  kSpo2 = 6,                // %
  kLeak = 7,                // L/min (device-estimated)
  kPulseRate = 8,           // 1/min
  kTidalVolume = 9,         // mL (device-computed)
  kRespiratoryRate = 10,    // 1/min (device-computed)
  kMinuteVentilation = 11,  // L/min (device-computed)
  kPlethysmogram = 12,      // photoplethysmogram, device units (only its shape is used)
  kArterialPressure = 13,   // arterial blood pressure waveform, mmHg
};
inline constexpr int kSignalCount = 14;

std::string_view SignalName(Signal signal);

// A run of consecutive samples of one signal. Consecutive chunks of a stream follow each other
// without gap unless the operator was told of a gap (StreamOperator::OnGap) in between.
// Values are physical units (see Signal); NaN marks a sample the device flagged invalid.
struct Chunk {
  TimeUs first_sample_us = 0;
  double sample_rate_hz = 0;
  std::span<const float> values;
  // ECG: the lead (vigil.v1.EcgLead number) of a device that sends several; 0 otherwise.
  int lead = 0;

  TimeUs end_us() const {
    return SampleTime(first_sample_us, sample_rate_hz, static_cast<int64_t>(values.size()));
  }
};

}  // namespace vigil::ops
