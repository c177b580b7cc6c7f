#include "pipeline/service/kafka_client_properties.h"

#include <string>

namespace vigil::service {

ClientProperties KafkaClientProperties(const config::KafkaSettings& k) {
  kafka::Properties common = k.properties;
  common["bootstrap.servers"] = k.bootstrap_servers;
  common["statistics.interval.ms"] = std::to_string(k.statistics_interval_ms);

  ClientProperties out;
  out.producer = common;
  out.producer["transactional.id"] = k.instance_id;
  out.producer["transaction.timeout.ms"] = std::to_string(k.transaction_timeout_ms);
  out.producer["client.id"] = k.instance_id;
  out.producer["linger.ms"] = "5";
  for (const auto& [key, value] : k.producer_properties) out.producer[key] = value;

  out.consumer = common;
  out.consumer["group.id"] = k.group_id;
  out.consumer["client.id"] = k.instance_id;
  out.consumer["partition.assignment.strategy"] = "cooperative-sticky";
  out.consumer["enable.auto.commit"] = "false";
  out.consumer["enable.auto.offset.store"] = "false";
  out.consumer["isolation.level"] = "read_committed";
  out.consumer["auto.offset.reset"] = k.auto_offset_reset;
  out.consumer["session.timeout.ms"] = std::to_string(k.session_timeout_ms);
  // Bounded prefetch: librdkafka's own queue is one of the buffers between Kafka and the graph.
  out.consumer["queued.max.messages.kbytes"] = "16384";
  for (const auto& [key, value] : k.consumer_properties) out.consumer[key] = value;

  out.patient_config = common;
  out.patient_config.erase("statistics.interval.ms");
  out.patient_config["group.id"] = k.instance_id + "-patient-config";  // assign only, never commits
  out.patient_config["client.id"] = k.instance_id + "-patient-config";
  out.patient_config["enable.auto.commit"] = "false";
  out.patient_config["isolation.level"] = "read_committed";
  out.patient_config["enable.partition.eof"] = "true";
  return out;
}

}  // namespace vigil::service
