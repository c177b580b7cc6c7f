// Prometheus metrics of `vigil run` (prometheus-cpp, served by prometheus::Exposer on
// metrics.port at /metrics) and the health endpoints (/healthz, /readyz on metrics.health_port,
// a small civetweb server: prometheus-cpp's Exposer cannot answer with a non-200 status).
//
// Threading: every counter, gauge and histogram is thread-safe (prometheus-cpp); the graph's
// lanes update them concurrently. Health flags are atomics.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

struct mg_context;
namespace prometheus {
class Exposer;
}

namespace vigil::metrics {

class ServiceMetrics {
  // Declared first: the public series below are initialised from these families.
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& counters_;
  prometheus::Family<prometheus::Counter>& dead_letters_;
  prometheus::Family<prometheus::Counter>& alerts_;
  prometheus::Family<prometheus::Histogram>& stage_seconds_;
  prometheus::Family<prometheus::Histogram>& operator_seconds_;
  prometheus::Family<prometheus::Gauge>& gauges_;
  prometheus::Family<prometheus::Gauge>& kafka_stats_;
  prometheus::Family<prometheus::Gauge>& partition_lag_;
  prometheus::Family<prometheus::Histogram>& latency_;

 public:
  // Registers every metric; starts no server.
  ServiceMetrics();
  ~ServiceMetrics();
  ServiceMetrics(const ServiceMetrics&) = delete;
  ServiceMetrics& operator=(const ServiceMetrics&) = delete;

  // Starts /metrics on `metrics_port` and /healthz, /readyz on `health_port` (0 = disabled).
  // Throws std::runtime_error naming the address when a port cannot be bound.
  void Serve(const std::string& bind_address, int metrics_port, int health_port);

  // readyz is 200 only while `ready` is set (partitions assigned, state restored, consuming);
  // healthz is 200 while `alive` is set (the run loop makes progress).
  void SetReady(bool ready) { ready_.store(ready); }
  void SetAlive(bool alive) { alive_.store(alive); }
  bool ready() const { return ready_.load(); }
  bool alive() const { return alive_.load(); }
  // A check run on every /healthz request: a non-empty answer (what is stuck) makes it 503.
  // Set before Serve.
  void SetLivenessCheck(std::function<std::string()> check) { liveness_ = std::move(check); }
  std::string Stalled() const { return liveness_ ? liveness_() : std::string(); }

  prometheus::Counter& records_in;         // telemetry records consumed
  prometheus::Counter& records_processed;  // decoded and analysed
  prometheus::Counter& records_replayed;   // re-analysed after a restore, outputs suppressed
  prometheus::Counter& samples_in;
  prometheus::Counter& records_out_alerts;
  prometheus::Counter& records_out_aggregates;
  prometheus::Counter& records_out_state;
  prometheus::Counter& transactions_committed;
  prometheus::Counter& transactions_aborted;
  prometheus::Counter& rebalances_assigned;
  prometheus::Counter& rebalances_revoked;
  prometheus::Counter& patient_config_applied;
  prometheus::Counter& patient_config_rejected;
  prometheus::Counter& partitions_paused;
  prometheus::Counter& backpressure_waits;  // in flight reached the limit; the loop waited
  prometheus::Counter& snapshots_reduced;  // over limits.max_output_bytes: operator states left out
  prometheus::Counter& snapshots_skipped;  // even without them too large: not written
  prometheus::Counter& hibernations;       // idle patients put to their compressed snapshot
  prometheus::Gauge& in_flight_records;
  prometheus::Gauge& in_flight_bytes;
  prometheus::Gauge& assigned_partitions;
  prometheus::Gauge& patients;
  prometheus::Gauge& patients_hibernated;  // of `patients`, idle ones kept as a compressed snapshot
  prometheus::Gauge& consumer_lag;         // sum over assigned partitions (librdkafka statistics)
  prometheus::Histogram& end_to_end_latency;  // Kafka timestamp of the input -> output committed
  prometheus::Histogram& state_restore_seconds;
  prometheus::Histogram& transaction_commit_seconds;

  prometheus::Counter& DeadLetters(std::string_view reason);
  prometheus::Counter& Alerts(std::string_view condition, std::string_view priority);
  prometheus::Histogram& StageSeconds(std::string_view stage);  // decode, analysis
  prometheus::Histogram& OperatorSeconds(std::string_view op);
  prometheus::Gauge& KafkaStatistic(std::string_view name, std::string_view client);
  prometheus::Gauge& PartitionLag(int partition);

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  mg_context* health_ = nullptr;
  std::atomic<bool> ready_{false};
  std::atomic<bool> alive_{true};
  std::function<std::string()> liveness_;
};

}  // namespace vigil::metrics
