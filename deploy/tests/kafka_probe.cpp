// vigil-kafka-probe: the Kafka side of the deployment integration tests (deploy/tests/*.sh).
//
//   vigil-kafka-probe produce [--patients N] [--seconds S] [--garbage G]
//                             [--transactional-id ID [--also-topic T]]
//     Synthetic telemetry (one ECG envelope per patient per second of device time, 250 Hz) to
//     topics.telemetry, plus G undecodable records (for the dead-letter path). With a
//     transactional id everything goes in one transaction, and --also-topic adds one record to
//     a second topic inside it; exit 1 with the error when the transaction fails (after aborting
//     it), so a test can prove that nothing half-written is left.
//   vigil-kafka-probe count --topic T [--idle-ms M]
//     Prints how many records a read_committed reader sees in T from the beginning.
//
// The cluster, security settings and secrets come from the same VIGIL_* environment variables
// and YAML as `vigil run` (--config), through the service's own configuration code, so the
// probe authenticates exactly the way the service does (including *_file secrets).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <iostream>

#include "pipeline/config/service_config.h"
#include "pipeline/kafka/kafka_client.h"
#include "vigil/v1/telemetry.pb.h"

namespace {

using namespace std::chrono_literals;

vigil::kafka::Properties ClientProperties(const vigil::config::ServiceConfig& config) {
  auto props = config.kafka.properties;
  props["bootstrap.servers"] = config.kafka.bootstrap_servers;
  return props;
}

// One second of a QRS-like spike train at `bpm`, as ECG counts of 5 uV.
void FillEcg(vigil::v1::SignalFrame& frame, int second, double bpm) {
  constexpr int kRate = 250;
  for (int i = 0; i < kRate; ++i) {
    const double t = second + static_cast<double>(i) / kRate;
    const double phase = std::fmod(t * bpm / 60.0, 1.0);
    const double mv = 1.1 * std::exp(-std::pow((phase - 0.25) / 0.01, 2)) +
                      0.2 * std::exp(-std::pow((phase - 0.55) / 0.04, 2));
    frame.add_samples(static_cast<int32_t>(std::lround(mv / 0.005)));
  }
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
    const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const int64_t start_us = now_us - int64_t{seconds} * 1'000'000;
    vigil::v1::TelemetryEnvelope envelope;
    size_t records = 0;
    for (int s = 0; s < seconds; ++s) {
      for (int p = 0; p < patients; ++p) {
        envelope.Clear();
        const std::string patient = fmt::format("probe-{:04d}", p);
        envelope.set_patient_id(patient);
        envelope.set_gateway_id("probe");
        envelope.set_sent_time_us(now_us);
        auto* ecg = envelope.add_frames();
        ecg->set_device_id(fmt::format("ecg-{}", p));
        ecg->set_kind(vigil::v1::SIGNAL_KIND_ECG);
        ecg->set_unit(vigil::v1::UNIT_MILLIVOLT);
        ecg->set_sample_rate_hz(250);
        ecg->set_first_sample_time_us(start_us + int64_t{s} * 1'000'000);
        ecg->set_sequence(static_cast<uint64_t>(s));
        ecg->set_gain(0.005);
        ecg->set_lead(vigil::v1::ECG_LEAD_MLII);
        FillEcg(*ecg, s, 60 + (p * 7) % 40);
        producer.Produce(config.topics.telemetry, patient, envelope.SerializeAsString());
        ++records;
      }
    }
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
  CLI::App app{"Kafka probe for Vigil's deployment tests (settings: VIGIL_* environment, as vigil run)"};
  app.require_subcommand(1);
  std::string config_file;
  app.add_option("--config", config_file, "YAML configuration of vigil run");
  int patients = 20, seconds = 30, garbage = 0, idle_ms = 3000;
  std::string transactional_id, also_topic, topic;
  auto* produce = app.add_subcommand("produce", "Produce synthetic telemetry");
  produce->add_option("--patients", patients)->check(CLI::Range(1, 100000));
  produce->add_option("--seconds", seconds)->check(CLI::Range(1, 86400));
  produce->add_option("--garbage", garbage, "Undecodable records to add")->check(CLI::Range(0, 1000000));
  produce->add_option("--transactional-id", transactional_id);
  produce->add_option("--also-topic", also_topic, "One more record to this topic (same transaction)");
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
