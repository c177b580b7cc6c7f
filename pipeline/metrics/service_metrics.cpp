#include "pipeline/metrics/service_metrics.h"

#include <civetweb.h>
#include <fmt/format.h>
#include <prometheus/exposer.h>

#include <stdexcept>

namespace vigil::metrics {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

Histogram::BucketBoundaries LatencyBuckets() {
  return {0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
          0.5,   0.75, 1,    1.5,  2,    3,     5,   10,   30,  60,  300};
}
Histogram::BucketBoundaries ProcessingBuckets() {
  return {1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2, 0.25, 1};
}

int Answer(mg_connection* connection, bool ok, const char* what) {
  const std::string body = fmt::format("{} {}\n", what, ok ? "ok" : "not ok");
  mg_printf(connection,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n%s",
            ok ? 200 : 503, ok ? "OK" : "Service Unavailable", body.size(), body.c_str());
  return ok ? 200 : 503;
}

int HealthHandler(mg_connection* connection, void* data) {
  const auto* self = static_cast<const ServiceMetrics*>(data);
  const auto* info = mg_get_request_info(connection);
  const std::string uri = info && info->local_uri ? info->local_uri : "";
  if (uri == "/readyz") return Answer(connection, self->ready(), "ready");
  if (uri == "/healthz") {
    const std::string stalled = self->Stalled();
    if (!stalled.empty()) return Answer(connection, false, ("alive: " + stalled).c_str());
    return Answer(connection, self->alive(), "alive");
  }
  return 0;  // civetweb answers 404
}

}  // namespace

ServiceMetrics::ServiceMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      counters_(BuildCounter()
                    .Name("vigil_events_total")
                    .Help("Service events by kind (records in/processed, outputs, transactions, "
                          "rebalances, patient configuration)")
                    .Register(*registry_)),
      dead_letters_(BuildCounter()
                        .Name("vigil_dead_letters_total")
                        .Help("Records and items sent to the dead-letter topic, by reason")
                        .Register(*registry_)),
      alerts_(BuildCounter()
                  .Name("vigil_alerts_total")
                  .Help("Alert records published, by condition and priority")
                  .Register(*registry_)),
      stage_seconds_(BuildHistogram()
                         .Name("vigil_stage_seconds")
                         .Help("Processing time per record and stage (decode, analysis)")
                         .Register(*registry_)),
      operator_seconds_(BuildHistogram()
                            .Name("vigil_operator_seconds")
                            .Help("Processing time per record and operator")
                            .Register(*registry_)),
      gauges_(BuildGauge()
                  .Name("vigil_state")
                  .Help("Current service state by kind")
                  .Register(*registry_)),
      kafka_stats_(BuildGauge()
                       .Name("vigil_kafka_statistic")
                       .Help("Selected librdkafka statistics (statistics.interval.ms)")
                       .Register(*registry_)),
      partition_lag_(
          BuildGauge()
              .Name("vigil_consumer_lag_records")
              .Help("Consumer lag per assigned telemetry partition (librdkafka statistics)")
              .Register(*registry_)),
      latency_(BuildHistogram()
                   .Name("vigil_latency_seconds")
                   .Help("end_to_end: input record's Kafka timestamp to its outputs committed; "
                         "state_restore: reading the state of newly assigned partitions; "
                         "transaction_commit: send offsets and commit")
                   .Register(*registry_)),
      records_in(counters_.Add({{"event", "records_in"}})),
      records_processed(counters_.Add({{"event", "records_processed"}})),
      records_replayed(counters_.Add({{"event", "records_replayed"}})),
      samples_in(counters_.Add({{"event", "samples_in"}})),
      records_out_alerts(counters_.Add({{"event", "records_out_alerts"}})),
      records_out_aggregates(counters_.Add({{"event", "records_out_aggregates"}})),
      records_out_state(counters_.Add({{"event", "records_out_state"}})),
      transactions_committed(counters_.Add({{"event", "transactions_committed"}})),
      transactions_aborted(counters_.Add({{"event", "transactions_aborted"}})),
      rebalances_assigned(counters_.Add({{"event", "partitions_assigned"}})),
      rebalances_revoked(counters_.Add({{"event", "partitions_revoked"}})),
      patient_config_applied(counters_.Add({{"event", "patient_config_applied"}})),
      patient_config_rejected(counters_.Add({{"event", "patient_config_rejected"}})),
      partitions_paused(counters_.Add({{"event", "backpressure_pauses"}})),
      backpressure_waits(counters_.Add({{"event", "backpressure_waits"}})),
      snapshots_reduced(counters_.Add({{"event", "snapshots_reduced"}})),
      snapshots_skipped(counters_.Add({{"event", "snapshots_skipped"}})),
      hibernations(counters_.Add({{"event", "hibernations"}})),
      in_flight_records(gauges_.Add({{"kind", "in_flight_records"}})),
      in_flight_bytes(gauges_.Add({{"kind", "in_flight_bytes"}})),
      assigned_partitions(gauges_.Add({{"kind", "assigned_partitions"}})),
      patients(gauges_.Add({{"kind", "patients"}})),
      patients_hibernated(gauges_.Add({{"kind", "patients_hibernated"}})),
      consumer_lag(gauges_.Add({{"kind", "consumer_lag_records"}})),
      end_to_end_latency(latency_.Add({{"kind", "end_to_end"}}, LatencyBuckets())),
      state_restore_seconds(latency_.Add({{"kind", "state_restore"}}, LatencyBuckets())),
      transaction_commit_seconds(latency_.Add({{"kind", "transaction_commit"}}, LatencyBuckets())) {
}

ServiceMetrics::~ServiceMetrics() {
  if (health_) mg_stop(health_);
}

void ServiceMetrics::Serve(const std::string& bind_address, int metrics_port, int health_port) {
  if (metrics_port > 0) {
    const std::string address = fmt::format("{}:{}", bind_address, metrics_port);
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
    } catch (const std::exception& e) {
      throw std::runtime_error(
          fmt::format("metrics.port: cannot serve /metrics on {}: {}", address, e.what()));
    }
    exposer_->RegisterCollectable(registry_);
  }
  if (health_port > 0) {
    const std::string ports = fmt::format("{}:{}", bind_address, health_port);
    const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "2", nullptr};
    mg_callbacks callbacks{};
    health_ = mg_start(&callbacks, nullptr, options);
    if (!health_) {
      throw std::runtime_error(
          fmt::format("metrics.health_port: cannot serve /healthz on {}", ports));
    }
    mg_set_request_handler(health_, "/healthz", HealthHandler, this);
    mg_set_request_handler(health_, "/readyz", HealthHandler, this);
  }
}

prometheus::Counter& ServiceMetrics::DeadLetters(std::string_view reason) {
  return dead_letters_.Add({{"reason", std::string(reason)}});
}

prometheus::Counter& ServiceMetrics::Alerts(std::string_view condition, std::string_view priority) {
  return alerts_.Add({{"condition", std::string(condition)}, {"priority", std::string(priority)}});
}

prometheus::Histogram& ServiceMetrics::StageSeconds(std::string_view stage) {
  return stage_seconds_.Add({{"stage", std::string(stage)}}, ProcessingBuckets());
}

prometheus::Histogram& ServiceMetrics::OperatorSeconds(std::string_view op) {
  return operator_seconds_.Add({{"operator", std::string(op)}}, ProcessingBuckets());
}

prometheus::Gauge& ServiceMetrics::KafkaStatistic(std::string_view name, std::string_view client) {
  return kafka_stats_.Add({{"name", std::string(name)}, {"client", std::string(client)}});
}

prometheus::Gauge& ServiceMetrics::PartitionLag(int partition) {
  return partition_lag_.Add({{"partition", std::to_string(partition)}});
}

}  // namespace vigil::metrics
