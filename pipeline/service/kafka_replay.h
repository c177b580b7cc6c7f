// `vigil replay <recording> --kafka <bootstrap>`: a recording produced as live telemetry for one
// patient, paced by device time (or as fast as the broker takes it). The frames come from the
// same replay::TelemetrySource the offline replay uses, so a Kafka run and an offline run see
// identical envelopes.
#pragma once

#include <atomic>
#include <ostream>
#include <string>

#include "pipeline/kafka/kafka_client.h"
#include "pipeline/replay/telemetry_source.h"

namespace vigil::service {

struct KafkaReplayOptions {
  std::string topic = "vigil.telemetry.v1";
  kafka::Properties properties;  // bootstrap.servers and any security settings
  // Device seconds per wall second; 0 = as fast as possible.
  double speed = 1;
};

struct KafkaReplayStats {
  uint64_t envelopes = 0;
  uint64_t bytes = 0;
  double seconds = 0;
};

// Produces every envelope of `source` keyed by its patient id (idempotent producer, acks=all),
// flushes, returns what it sent. Stops early when `stop` is set. Throws KafkaError when a
// record cannot be delivered.
KafkaReplayStats ReplayToKafka(replay::TelemetrySource& source, const KafkaReplayOptions& options,
                               const std::atomic<bool>& stop);

}  // namespace vigil::service
