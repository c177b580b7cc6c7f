// `vigil run`: one member of the consumer group that reads vigil.telemetry.v1 and publishes
// alerts, aggregates, dead letters and patient state, exactly once, in Kafka transactions.
//
// How it works (DESIGN.md has the picture):
//  - The run loop (the calling thread) owns the group consumer, the transactional producer's
//    transaction calls and the patient-config reader. It routes each telemetry record by
//    patient to one of N lanes of a oneTBB flow graph (BuildGraph): per lane, decode/validate
//    runs in parallel, a sequencer restores the lane's order, and one serial node runs the
//    lane's patients' PatientAnalysis. A patient always maps to the same lane, so its records
//    are analysed in order while lanes run in parallel.
//  - Every `limits.transaction_interval_ms` the loop waits until every dispatched record is
//    finished, then commits the transaction with the next offsets (so only fully processed
//    records are ever committed) and, every `limits.snapshot_interval_ms`, the snapshots of all
//    patients whose state changed (into vigil.state.v1, same partition as their telemetry).
//  - On assignment a partition's patients are restored from vigil.state.v1; the partition is
//    re-read from the last snapshot's position and records before the committed offset are
//    re-analysed with their outputs suppressed (they were committed before), so state and
//    outputs agree exactly with an uninterrupted run. On revocation the partition's state is
//    snapshotted and committed. On an abortable transaction error the transaction is aborted
//    and every assigned partition is recovered the same way.
//  - Backpressure: at `limits.max_in_flight_records` unfinished records the consumer's
//    partitions are paused; they resume below half. No queue in between is unbounded.
//
// Threading: construct and Run on one thread; RequestStop may be called from any thread or a
// signal handler (it only sets an atomic).
#pragma once

#include <atomic>
#include <memory>

#include "pipeline/config/service_config.h"

namespace vigil::service {

class StreamService {
 public:
  // Throws config::ConfigError when the analysis configuration is invalid (operator and
  // parameter named), std::invalid_argument for bad Kafka properties.
  explicit StreamService(config::ServiceConfig config);
  ~StreamService();
  StreamService(const StreamService&) = delete;
  StreamService& operator=(const StreamService&) = delete;

  // Runs until RequestStop (returns 0 after a clean shutdown: last transaction committed, group
  // left) or a fatal error (logged; returns 1). Throws only on start-up failures (metrics port
  // taken, Kafka client creation).
  int Run();

  // Async-signal-safe.
  void RequestStop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Process-wide stop flag set by SIGTERM/SIGINT for `vigil run`; installs the handlers.
std::atomic<bool>& InstallStopSignals();

}  // namespace vigil::service
