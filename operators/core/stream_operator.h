// The contract between an operator and the runtime that drives it (the Kafka service, the
// offline replay, tests and benchmarks all drive operators through this interface).
//
// An operator is built once from validated options and is immutable afterwards (const methods
// only, safe to share between threads). Everything that changes while a patient's data flows
// through lives in the OperatorState the operator creates: one state per patient and stream,
// used by one thread at a time, snapshot to bytes and restored on another machine.
//
// Data problems (NaN samples, gaps, out-of-range values) are not exceptions: operators treat
// them as signal-quality facts and may emit technical episodes. Methods throw only on
// programming errors (e.g. a state of another operator's type).
#pragma once

#include <limits>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "operators/core/event.h"
#include "operators/core/parameters.h"
#include "operators/core/signal.h"
#include "operators/core/snapshot.h"
#include "operators/core/time.h"

namespace vigil::ops {

class OperatorState {
 public:
  virtual ~OperatorState() = default;
  // The state as bytes, in the operator's own versioned format.
  virtual std::string Snapshot() const = 0;
  // Replaces this state with a snapshot. Throws SnapshotError if the bytes are not a snapshot
  // of this operator's current format; the state is then unchanged.
  virtual void Restore(std::string_view bytes) = 0;
};

// Device events that operators may care about (the pipeline maps vigil.v1.DeviceEvent here).
struct DeviceEventView {
  enum class Type : uint8_t { kSessionStart, kSessionStop, kSettings, kLeadOff, kLeadOn, kOther };
  Type type = Type::kOther;
  TimeUs time_us = 0;
  // kSettings: the values in force from now on (NaN = unchanged / unknown).
  double ipap_cm_h2o = std::numeric_limits<double>::quiet_NaN();
  double epap_cm_h2o = std::numeric_limits<double>::quiet_NaN();
  double intended_leak_lpm = std::numeric_limits<double>::quiet_NaN();
};

// The operator's own state type of `state`. Throws std::logic_error naming `op` for a state of
// another operator (a programming error in the runtime, never a data problem).
template <class T>
T& StateCast(OperatorState& state, std::string_view op) {
  auto* typed = dynamic_cast<T*>(&state);
  if (typed == nullptr) {
    throw std::logic_error(std::string(op) + ": state of another operator");
  }
  return *typed;
}

class StreamOperator {
 public:
  virtual ~StreamOperator() = default;

  // Registry name, e.g. "ecg.arrhythmia"; also the prefix of its configuration keys.
  virtual std::string_view name() const = 0;
  // Semantic version; appears in alert evidence.
  virtual std::string_view version() const = 0;
  // The signals this operator consumes. The runtime calls Process only with these.
  virtual std::span<const Signal> inputs() const = 0;

  virtual std::unique_ptr<OperatorState> MakeState() const = 0;

  // Consumes the next chunk of `signal`, appending what it finds to `out`. Chunks of one signal
  // arrive in time order; chunks of different signals are interleaved roughly in time order.
  virtual void Process(OperatorState& state, Signal signal, const Chunk& chunk,
                       Events& out) const = 0;

  // A device event (therapy session, settings, lead off). Default: ignored.
  virtual void OnDeviceEvent(OperatorState& state, const DeviceEventView& event, Events& out) const;

  // Samples of `signal` between `from_us` and `to_us` are missing (lost frames, device gap).
  // Operators must not read a gap as asystole or apnea. Default: ignored.
  virtual void OnGap(OperatorState& state, Signal signal, TimeUs from_us, TimeUs to_us,
                     Events& out) const;

  // Device time has reached `now_us` for this patient (the watermark), even if this operator's
  // signals are silent: lets time-based rules and day boundaries fire. Default: ignored.
  virtual void AdvanceTo(OperatorState& state, TimeUs now_us, Events& out) const;

  // End of a finite recording: close open episodes at their last sample. Default: ignored.
  virtual void Finish(OperatorState& state, Events& out) const;
};

}  // namespace vigil::ops
