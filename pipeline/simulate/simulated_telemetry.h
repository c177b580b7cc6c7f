// The simulator as telemetry: simulator::PatientBlock -> vigil.v1.TelemetryEnvelope, as the
// patient's home gateway would send it (one envelope per patient per block of device time,
// frames per device and signal, device events in time order), and TelemetrySources over a
// simulated patient or cohort, so `vigil simulate`, the offline replay, tests and benchmarks
// all see identical envelopes.
//
// Threading: encoders and sources are used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/replay/telemetry_source.h"
#include "simulator/patient_simulator.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil::simulate {

// Encodes one patient's blocks. Keeps the per-stream frame sequences (+1 per frame of each
// (device, kind)) and per-device event sequences, so one encoder serves one patient for the
// whole run.
class EnvelopeEncoder {
 public:
  explicit EnvelopeEncoder(const sim::PatientProfile& profile) : profile_(&profile) {}
  // Fills `envelope` (cleared first) from `block`. Returns false (envelope left empty) when the
  // block holds nothing to send (no device recording, no event).
  bool Encode(const sim::PatientBlock& block, v1::TelemetryEnvelope& envelope);

 private:
  const sim::PatientProfile* profile_;
  uint64_t ecg_sequence_ = 0, flow_sequence_ = 0, pressure_sequence_ = 0, co2_sequence_ = 0;
  uint64_t ecg_event_sequence_ = 0, niv_event_sequence_ = 0;
  uint64_t envelopes_ = 0;
};

// A cohort of `patients` patients (indices 0..patients-1) advancing together, block by block.
struct CohortOptions {
  uint32_t patients = 1;
  uint32_t first_index = 0;  // patient ids sim-<first_index>...: shards of one cohort
  sim::SimulationOptions simulation;
  int block_seconds = 1;
};

class SimulatedCohort {
 public:
  // Throws std::invalid_argument on bad options.
  explicit SimulatedCohort(const CohortOptions& options);
  ~SimulatedCohort();

  uint32_t size() const { return static_cast<uint32_t>(patients_.size()); }
  const sim::PatientProfile& profile(uint32_t i) const;
  // Device time the next block starts at.
  ops::TimeUs now_us() const { return now_us_; }
  bool finished() const { return now_us_ >= options_.simulation.end_us; }

  // Generates the next block of patient `i` (patients must be pulled in order 0..size-1, each
  // once per block; the cohort's clock advances after the last). `truth` receives the
  // patient's new truth. Returns false when the patient has nothing to send in this block.
  bool NextEnvelope(uint32_t i, v1::TelemetryEnvelope& envelope, std::vector<sim::TruthEvent>& truth);

 private:
  struct Patient;
  CohortOptions options_;
  std::vector<std::unique_ptr<Patient>> patients_;
  ops::TimeUs now_us_ = 0;
};

// One simulated patient as a TelemetrySource (for the offline replay). Truth accumulates in
// truth() as the source is read. `options.simulation.end_us` must be finite.
std::unique_ptr<replay::TelemetrySource> MakePatientSource(
    const sim::PatientProfile& profile, const sim::SimulationOptions& options,
    std::vector<sim::TruthEvent>* truth = nullptr, int block_seconds = 1);

// As MakePatientSource, over a simulator prepared by the caller (e.g. with forced plans).
std::unique_ptr<replay::TelemetrySource> MakePatientSource(
    std::unique_ptr<sim::PatientSimulator> simulator, std::vector<sim::TruthEvent>* truth,
    int block_seconds = 1);

}  // namespace vigil::simulate
