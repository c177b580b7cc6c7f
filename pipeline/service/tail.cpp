#include "pipeline/service/tail.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <chrono>

#include "pipeline/output/json_lines.h"
#include "vigil/v1/aggregate.pb.h"
#include "vigil/v1/alert.pb.h"
#include "vigil/v1/dead_letter.pb.h"
#include "vigil/v1/patient_config.pb.h"
#include "vigil/v1/state.pb.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil::service {

std::unique_ptr<google::protobuf::Message> MessageForTopic(const std::string& topic,
                                                           const std::string& type) {
  const auto is = [&](std::string_view kind, std::string_view topic_part) {
    return type.empty() ? topic.find(topic_part) != std::string::npos : type == kind;
  };
  // Most specific names first: "patient-config" before anything else.
  if (is("patient-config", "patient-config")) return std::make_unique<v1::PatientConfig>();
  if (is("telemetry", "telemetry")) return std::make_unique<v1::TelemetryEnvelope>();
  if (is("alert", "alerts")) return std::make_unique<v1::Alert>();
  if (is("aggregate", "aggregates")) return std::make_unique<v1::Aggregate>();
  if (is("dead-letter", "dlq")) return std::make_unique<v1::DeadLetter>();
  if (is("state", "state")) return std::make_unique<v1::PatientStateSnapshot>();
  throw std::invalid_argument(
      fmt::format("topic {}: cannot tell its message type{}; use --type telemetry|alert|aggregate|"
                  "dead-letter|state|patient-config",
                  topic, type.empty() ? "" : " (unknown --type " + type + ")"));
}

size_t Tail(const TailOptions& options, std::ostream& out, std::ostream& err,
            const std::atomic<bool>& stop) {
  auto message = MessageForTopic(options.topic, options.type);
  kafka::Properties props = options.properties;
  props["group.id"] =
      fmt::format("vigil-tail-{}", std::chrono::steady_clock::now().time_since_epoch().count());
  props["enable.auto.commit"] = "false";
  props["isolation.level"] = "read_committed";
  kafka::Consumer consumer(props);
  const int partitions =
      kafka::PartitionCount(consumer.handle(), options.topic, std::chrono::seconds(30));
  std::vector<RdKafka::TopicPartition*> assignment;
  for (int p = 0; p < partitions; ++p) {
    assignment.push_back(RdKafka::TopicPartition::create(
        options.topic, p,
        options.from_beginning ? RdKafka::Topic::OFFSET_BEGINNING : RdKafka::Topic::OFFSET_END));
  }
  consumer.handle().assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);

  size_t printed = 0;
  auto last = std::chrono::steady_clock::now();
  google::protobuf::util::JsonPrintOptions json;
  while (!stop.load()) {
    auto record = consumer.Poll(std::chrono::milliseconds(100));
    if (!record) {
      if (options.until_idle_s &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - last).count() >=
              *options.until_idle_s) {
        break;
      }
      continue;
    }
    last = std::chrono::steady_clock::now();
    if (!record->value) continue;  // tombstone of a compacted topic
    message->Clear();
    std::string line;
    if (!message->ParseFromString(*record->value) ||
        !google::protobuf::util::MessageToJsonString(*message, &line, json).ok()) {
      err << fmt::format("{}[{}]@{}: not a {}\n", record->topic, record->partition, record->offset,
                         message->GetTypeName());
      continue;
    }
    // Alerts and aggregates in the offline replay's vocabulary, so both paths print equal lines.
    if (const auto* alert = dynamic_cast<const v1::Alert*>(message.get())) {
      line = output::AlertLine(*alert);
    } else if (const auto* aggregate = dynamic_cast<const v1::Aggregate*>(message.get())) {
      line = output::AggregateLine(*aggregate);
    }
    out << line << '\n';
    ++printed;
  }
  out.flush();
  consumer.Close();
  return printed;
}

}  // namespace vigil::service
