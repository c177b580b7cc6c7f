// Deterministic synthetic telemetry for tests, load and benchmarks: per patient an ECG lead
// (250 Hz, a QRS-like spike train around 60-90 bpm) and ventilator flow and pressure (25 Hz,
// ~15 breaths/min), one envelope per patient per frame period. Not physiology: enough shape and
// volume for the runtime, and the same bytes every time for the same options.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "vigil/v1/telemetry.pb.h"

namespace vigil::service {

struct SyntheticOptions {
  int patients = 10;
  double seconds = 60;       // device time per patient
  double frame_seconds = 1;  // one envelope per patient per this much device time
  double ecg_hz = 250;
  bool ventilation = true;  // add flow and pressure frames
  std::string patient_prefix = "synthetic";
  int64_t start_us = 1'735'689'600'000'000;  // 2025-01-01T00:00:00Z
  // Every this many frames of a patient, one frame is dropped (a sequence gap); 0 = never.
  int drop_every = 0;
};

std::string SyntheticPatientId(const SyntheticOptions& options, int index);

// Calls `sink` for every envelope in device-time order (all patients' frame k before frame k+1).
// Returns the number of envelopes; samples (ECG + ventilation) are added to `*samples` if given.
size_t GenerateTelemetry(const SyntheticOptions& options,
                         const std::function<void(const v1::TelemetryEnvelope&)>& sink,
                         uint64_t* samples = nullptr);

}  // namespace vigil::service
