// Configuration of `vigil run`: a YAML file, then environment variables on top.
//
// Every scalar key has a dotted path (`kafka.bootstrap_servers`, `limits.lanes`, ...) and an
// environment variable: "VIGIL_" + the path in upper case with dots as underscores
// (`VIGIL_KAFKA_BOOTSTRAP_SERVERS`, `VIGIL_LIMITS_LANES`). Map-valued sections take free-form
// keys after a double underscore, where a further double underscore stands for a dot:
//   kafka.properties.<librdkafka property>  VIGIL_KAFKA_PROPERTIES__SECURITY__PROTOCOL=SASL_SSL
//   analysis.operators.<name>.<parameter>   VIGIL_ANALYSIS_OPERATORS__ECG__QRS__BRADY_BPM=45
// A Kafka property whose key ends in "_file" is read from that file (trailing line break
// removed) into the key without the suffix, so secrets can live in mounted files:
//   kafka.properties.sasl.password_file     VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE=/run/...
// The full table is in deploy/local/vigil.yaml and README.md (`vigil run --print-config`).
//
// Errors: LoadServiceConfig throws ConfigError naming the key (path) and the offending value for
// an unknown key, a value of the wrong type or out of range, an unknown operator, a VIGIL_*
// variable that names no key (the scripts' and tests' own variables excepted), or a Kafka
// property exactly-once processing depends on (enable.auto.commit, isolation.level,
// transactional.id). Nothing is half-applied: a bad configuration stops the service at start.
// Values are shown in clear only for Vigil's own non-secret keys and for librdkafka properties
// on an allow-list of harmless ones; every other value is "<redacted>".
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/kafka/kafka_client.h"

namespace vigil::config {

class ConfigError : public std::invalid_argument {
 public:
  ConfigError(std::string key, std::string value, const std::string& why);
  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }

 private:
  std::string key_;
  std::string value_;
};

struct KafkaSettings {
  std::string bootstrap_servers = "localhost:9092";
  std::string group_id = "vigil";
  // Prefix of this instance's transactional.id; must be unique and stable per instance
  // (e.g. the pod name). Default: "<group_id>-<hostname>".
  std::string instance_id;
  // Where a new group starts reading telemetry: "earliest" (no data lost) or "latest".
  std::string auto_offset_reset = "earliest";
  // librdkafka properties for every client (security.protocol, sasl.*, ssl.* ...).
  kafka::Properties properties;
  // Extra properties for the group consumer / the transactional producer only.
  kafka::Properties consumer_properties;
  kafka::Properties producer_properties;
  int session_timeout_ms = 10000;
  int transaction_timeout_ms = 60000;
  int statistics_interval_ms = 5000;
};

struct TopicSettings {
  std::string telemetry = "vigil.telemetry.v1";
  std::string alerts = "vigil.alerts.v1";
  std::string aggregates = "vigil.aggregates.v1";
  std::string dead_letter = "vigil.dlq.v1";
  std::string state = "vigil.state.v1";
  std::string patient_config = "vigil.patient-config.v1";
};

struct LimitSettings {
  // Serial lanes (a patient always goes to lane hash(patient) % lanes). 0 = hardware threads.
  int lanes = 0;
  // TBB worker threads for the graph (the Kafka loop has its own thread besides). 0 = hardware
  // threads.
  int threads = 0;
  // Records dispatched to the graph and not yet finished. At this many the loop stops taking
  // records from the consumer until half have finished (librdkafka's bounded prefetch queue then
  // fills and its fetcher stops).
  int max_in_flight_records = 4096;
  // ... and at this many bytes of records in flight (keys and values), whichever comes first:
  // 4096 records of up to max_record_bytes each would otherwise be 16 GiB.
  int64_t max_in_flight_bytes = 256 << 20;
  // Still full after this long: the consumer's partitions are paused (serving rebalances while
  // the lanes are stuck); they resume at half. Not at once, because a pause discards librdkafka's
  // prefetched records, which then have to be fetched again.
  int pause_after_ms = 2000;
  // A record larger than this is dead-lettered as OVERSIZED.
  int max_record_bytes = 4 << 20;
  int max_frames_per_record = 256;
  int max_samples_per_frame = 100000;  // as the offline replay (analysis::DecodeLimits)
  // Every message Vigil produces stays below this (librdkafka's and the broker's default limit
  // is about 1 MB). A larger patient snapshot drops its largest operator states (logged and
  // counted; those operators restart fresh after a restore) rather than fail the transaction.
  int max_output_bytes = 900000;
  // A dead letter carries at most this much of the original value (plus its position).
  int dead_letter_value_bytes = 65536;
  // /healthz turns 503 when a lane has worked on one record, or the run loop has not turned,
  // for longer than this.
  int liveness_deadline_ms = 60000;
  // A transaction commits the offsets of finished records at least this often.
  int transaction_interval_ms = 1000;
  // Patient state snapshots go to the state topic at least this often (and on revocation).
  int snapshot_interval_ms = 10000;
  // Devices silent for longer than this (Kafka record time) raise "device offline".
  double device_offline_after_s = 300;
  // How often the device-offline check runs, in Kafka record time of a partition.
  double device_check_interval_s = 30;
  // A patient without records for this long (Kafka record time of its partition) is kept as its
  // compressed snapshot instead of live operator states (about 20 KB instead of 87 KB) until its
  // next record. 0 = never. Must be above device_offline_after_s + device_check_interval_s, so
  // that its device-offline alert has been raised first.
  double evict_idle_after_s = 1800;
  // Graceful shutdown must finish within this (then the process exits anyway).
  int shutdown_timeout_ms = 8000;
};

struct MetricsSettings {
  std::string bind_address = "0.0.0.0";
  int port = 9464;         // /metrics (Prometheus)
  int health_port = 9465;  // /healthz, /readyz
};

struct LoggingSettings {
  std::string level = "info";
  // Salt of the keyed hash that stands for patient ids in logs (never log the id itself).
  std::string patient_hash_salt = "vigil";
};

// Fault injection for the robustness tests; all off by default.
struct FaultSettings {
  // The first N restores of partitions from the state topic fail as a broker error would.
  int restore_failures = 0;
};

struct ServiceConfig {
  KafkaSettings kafka;
  TopicSettings topics;
  analysis::AnalysisConfig analysis;
  LimitSettings limits;
  MetricsSettings metrics;
  LoggingSettings logging;
  FaultSettings faults;
};

// Reads `file` (may be empty: defaults only), applies the environment `env` (name -> value;
// every name starting with VIGIL_ must match a key), validates. Throws ConfigError.
ServiceConfig LoadServiceConfig(const std::filesystem::path& file,
                                const std::map<std::string, std::string>& env);

// The process environment as a map, for LoadServiceConfig.
std::map<std::string, std::string> ProcessEnvironment();

// Every scalar key with its environment variable and current value (secrets redacted), one per
// line: the documentation of the mapping, printed by `vigil run --print-config`.
std::string DescribeConfig(const ServiceConfig& config);

}  // namespace vigil::config
