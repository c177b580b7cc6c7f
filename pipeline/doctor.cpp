#include "pipeline/doctor.h"

#include <fmt/format.h>

#include <chrono>
#include <random>

#include "pipeline/kafka/kafka_client.h"
#include "pipeline/topics.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

std::string RandomSuffix() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

}  // namespace

int RunDoctor(const std::string& bootstrap, std::ostream& out) {
  int failures = 0;
  auto check = [&](const std::string& what, auto&& body) {
    try {
      const std::string detail = body();
      out << "ok    " << what << (detail.empty() ? "" : ": " + detail) << "\n";
    } catch (const std::exception& e) {
      ++failures;
      out << "FAIL  " << what << ": " << e.what() << "\n";
    }
  };

  kafka::Properties common{{"bootstrap.servers", bootstrap}};
  check("topics", [&] {
    kafka::Producer probe(common);
    std::string summary;
    for (const auto& topic : topics::kAll) {
      const int n = kafka::PartitionCount(probe.handle(), std::string(topic), 10s);
      summary += fmt::format("{}{}({})", summary.empty() ? "" : " ", topic, n);
    }
    return summary;
  });

  check("transactional round trip on " + std::string(topics::kTelemetry), [&] {
    const std::string suffix = RandomSuffix();
    const std::string patient = "vigil-doctor-" + suffix;
    auto props = common;
    props["transactional.id"] = "vigil-doctor-" + suffix;
    kafka::Producer producer(props);
    producer.InitTransactions(30s);

    v1::TelemetryEnvelope aborted;
    aborted.set_patient_id(patient);
    aborted.set_gateway_id("aborted");
    producer.BeginTransaction();
    producer.Produce(std::string(topics::kTelemetry), patient, aborted.SerializeAsString());
    producer.AbortTransaction(30s);

    v1::TelemetryEnvelope committed;
    committed.set_patient_id(patient);
    committed.set_gateway_id("committed");
    producer.BeginTransaction();
    producer.Produce(std::string(topics::kTelemetry), patient, committed.SerializeAsString());
    producer.CommitTransaction(30s);

    kafka::Consumer consumer({{"bootstrap.servers", bootstrap},
                              {"group.id", "vigil-doctor-" + suffix},
                              {"isolation.level", "read_committed"},
                              {"enable.auto.commit", "false"},
                              {"enable.partition.eof", "false"}});
    consumer.AssignAllFromBeginning(std::string(topics::kTelemetry), 10s);
    int seen_committed = 0;
    int seen_aborted = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline && seen_committed == 0) {
      auto record = consumer.Poll(200ms);
      if (!record || record->key != patient || !record->value) continue;
      v1::TelemetryEnvelope got;
      if (!got.ParseFromString(*record->value)) throw std::runtime_error("undecodable record");
      (got.gateway_id() == "committed" ? seen_committed : seen_aborted)++;
    }
    consumer.Close();
    if (seen_committed != 1 || seen_aborted != 0) {
      throw std::runtime_error(fmt::format("read back {} committed and {} aborted records",
                                           seen_committed, seen_aborted));
    }
    return std::string("committed record read back, aborted one invisible");
  });
  out << (failures == 0 ? "kafka ready for vigil\n" : "kafka NOT ready for vigil\n");
  return failures == 0 ? 0 : 1;
}

}  // namespace vigil
