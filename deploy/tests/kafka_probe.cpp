// vigil-kafka-probe: the Kafka side of the deployment integration tests (deploy/tests/*.sh).
//
//   vigil-kafka-probe produce [--patients N] [--seconds S] [--garbage G]
//                             [--transactional-id ID [--also-topic T]]
//     The service's synthetic telemetry (one envelope per patient per second of device time,
//     ending now) to topics.telemetry, plus G undecodable records (for the dead-letter path). With
//     a transactional id everything goes in one transaction, and --also-topic adds one record to a
//     second topic inside it; exit 1 with the error when the transaction fails (after aborting it),
//     so a test can prove that nothing half-written is left.
//   vigil-kafka-probe count --topic T [--idle-ms M]
//     Prints how many records a read_committed reader sees in T from the beginning.
//
// The cluster, security settings and secrets come from the same VIGIL_* environment variables
// and YAML as `vigil run` (--config), through the service's own configuration code, so the
// probe authenticates exactly the way the service does (including *_file secrets).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>

#include "pipeline/config/service_config.h"
#include "pipeline/kafka/kafka_client.h"
#include "pipeline/service/synthetic_telemetry.h"
#include "vigil/v1/telemetry.pb.h"

namespace {

using namespace std::chrono_literals;

vigil::kafka::Properties ClientProperties(const vigil::config::ServiceConfig& config) {
  auto props = config.kafka.properties;
  props["bootstrap.servers"] = config.kafka.bootstrap_servers;
  return props;
}

int Produce(const vigil::config::ServiceConfig& config, int patients, int seconds, int garbage,
            const std::string& transactional_id, const std::string& also_topic) {
  auto props = ClientProperties(config);
  if (!transactional_id.empty()) props["transactional.id"] = transactional_id;
  vigil::kafka::Producer producer(props);
  const bool transactional = !transactional_id.empty();
  try {
    if (transactional) {
      producer.InitTransactions(30s);
      producer.BeginTransaction();
    }
    // The service's own synthetic cohort (ECG + ventilation), ending now in device time.
    vigil::service::SyntheticOptions synthetic;
    synthetic.patients = patients;
    synthetic.seconds = seconds;
    synthetic.patient_prefix = "probe";
    synthetic.start_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count() -
                         int64_t{seconds} * 1'000'000;
    size_t records = vigil::service::GenerateTelemetry(
        synthetic, [&](const vigil::v1::TelemetryEnvelope& envelope) {
          producer.Produce(config.topics.telemetry, envelope.patient_id(),
                           envelope.SerializeAsString());
        });
    for (int g = 0; g < garbage; ++g) {
      producer.Produce(config.topics.telemetry, fmt::format("probe-garbage-{}", g),
                       "\xff\xff not a TelemetryEnvelope");
      ++records;
    }
    if (!also_topic.empty()) producer.Produce(also_topic, "probe", "probe");
    if (transactional) {
      producer.CommitTransaction(30s);
    } else {
      producer.Flush(30s);
    }
    std::cout << fmt::format("produced {} records{}\n", records + (also_topic.empty() ? 0 : 1),
                             transactional ? " in one committed transaction" : "");
    return 0;
  } catch (const vigil::kafka::KafkaError& e) {
    std::cerr << "vigil-kafka-probe produce: " << e.what() << "\n";
    if (transactional && e.abortable()) {
      try {
        producer.AbortTransaction(30s);
        std::cerr << "vigil-kafka-probe produce: transaction aborted\n";
      } catch (const std::exception& again) {
        std::cerr << "vigil-kafka-probe produce: abort failed too: " << again.what() << "\n";
      }
    }
    return 1;
  }
}

int Count(const vigil::config::ServiceConfig& config, const std::string& topic, int idle_ms) {
  auto props = ClientProperties(config);
  props["group.id"] = fmt::format("{}-probe-count", config.kafka.group_id);
  props["enable.auto.commit"] = "false";
  props["isolation.level"] = "read_committed";
  vigil::kafka::Consumer consumer(props);
  consumer.AssignAllFromBeginning(topic, 30s);
  const auto records = consumer.ReadUntilIdle(std::chrono::milliseconds(idle_ms));
  consumer.Close();
  std::cout << records.size() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Kafka probe for Vigil's deployment tests (settings: VIGIL_* environment, as vigil run)"};
  app.require_subcommand(1);
  std::string config_file;
  app.add_option("--config", config_file, "YAML configuration of vigil run");
  int patients = 20, seconds = 30, garbage = 0, idle_ms = 3000;
  std::string transactional_id, also_topic, topic;
  auto* produce = app.add_subcommand("produce", "Produce synthetic telemetry");
  produce->add_option("--patients", patients)->check(CLI::Range(1, 100000));
  produce->add_option("--seconds", seconds)->check(CLI::Range(1, 86400));
  produce->add_option("--garbage", garbage, "Undecodable records to add")
      ->check(CLI::Range(0, 1000000));
  produce->add_option("--transactional-id", transactional_id);
  produce->add_option("--also-topic", also_topic,
                      "One more record to this topic (same transaction)");
  auto* count = app.add_subcommand("count", "Count committed records of a topic");
  count->add_option("--topic", topic)->required();
  count->add_option("--idle-ms", idle_ms)->check(CLI::Range(100, 600000));
  CLI11_PARSE(app, argc, argv);
  try {
    const auto config =
        vigil::config::LoadServiceConfig(config_file, vigil::config::ProcessEnvironment());
    if (*produce) return Produce(config, patients, seconds, garbage, transactional_id, also_topic);
    return Count(config, topic, idle_ms);
  } catch (const std::exception& e) {
    std::cerr << "vigil-kafka-probe: " << e.what() << "\n";
    return 1;
  }
}
