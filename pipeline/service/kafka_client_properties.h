// The librdkafka properties of the service's three clients, from its configuration. Pure: the
// exactly-once settings are fixed here (transactional producer; read_committed consumer that
// never commits on its own; a patient-config reader that never joins a group), the operator's
// kafka.properties apply to all three, kafka.producer_properties / consumer_properties to one.
// ServiceConfig refuses the keys that would break the guarantees before this is called.
#pragma once

#include "pipeline/config/service_config.h"
#include "pipeline/kafka/kafka_client.h"

namespace vigil::service {

struct ClientProperties {
  kafka::Properties producer;        // transactional, one per instance
  kafka::Properties consumer;        // the telemetry group member
  kafka::Properties patient_config;  // assign-only reader of the patient-config topic
};

ClientProperties KafkaClientProperties(const config::KafkaSettings& kafka);

}  // namespace vigil::service
