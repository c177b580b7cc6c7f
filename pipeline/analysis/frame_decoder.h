// Validation and decoding of vigil.v1 telemetry into what operators consume. Shared by the Kafka
// service and the offline replay so that both accept and reject exactly the same input.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "operators/core/stream_operator.h"
#include "vigil/v1/dead_letter.pb.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil::analysis {

struct DecodeLimits {
  double min_sample_rate_hz = 0.01;
  double max_sample_rate_hz = 10000;
  size_t max_samples_per_frame = 100000;
};

// Why an item was rejected: a dead-letter reason and a detail naming field and value.
struct Rejection {
  v1::DeadLetterReason reason = v1::DEAD_LETTER_REASON_UNSPECIFIED;
  std::string detail;
  int item_index = -1;
};

// Checks one frame and writes its samples in physical units (raw * gain + offset) into
// `values`, in the unit operators take for its kind (ops::Signal): CO2 and arterial pressure
// in kPa become mmHg, flow in L/s becomes L/min. Returns the rejection when the frame is
// unusable (unknown kind, a unit that is not one of its kind's, sample rate out of range, zero
// or non-finite gain/offset, a value that overflows a float, too many samples). `index` names
// the frame in details.
std::optional<Rejection> DecodeFrame(const v1::SignalFrame& frame, int index,
                                     const DecodeLimits& limits, std::vector<float>& values);

// Maps a device event; nullopt for events operators do not use.
std::optional<ops::DeviceEventView> DecodeDeviceEvent(const v1::DeviceEvent& event);

ops::Signal ToSignal(v1::SignalKind kind);
v1::SignalKind ToSignalKind(ops::Signal signal);

}  // namespace vigil::analysis
