// `vigil tail <topic>`: prints the committed records of a Vigil topic as JSON Lines, decoding by
// the topic's message type: alerts and aggregates as the offline replay prints them
// (pipeline/output/json_lines.h: {"type":"alert","alert":{...}}), other messages as their
// canonical protobuf JSON.
#pragma once

#include <google/protobuf/message.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "pipeline/kafka/kafka_client.h"

namespace vigil::service {

struct TailOptions {
  std::string topic;
  bool from_beginning = false;
  // Stop after this long without a record; nullopt = until `stop` is set.
  std::optional<double> until_idle_s;
  // Message type: telemetry, alert, aggregate, dead-letter, state, patient-config; empty = from
  // the topic name.
  std::string type;
  kafka::Properties properties;  // bootstrap.servers and any security settings
};

// An empty message of the type carried by `topic` (by `type` when given). Throws
// std::invalid_argument naming the topic when neither says which type it is.
std::unique_ptr<google::protobuf::Message> MessageForTopic(const std::string& topic,
                                                           const std::string& type);

// Prints records until idle or stopped; returns the number printed. Undecodable records are
// reported on `err` and skipped. Throws KafkaError when the topic cannot be read.
size_t Tail(const TailOptions& options, std::ostream& out, std::ostream& err,
            const std::atomic<bool>& stop);

}  // namespace vigil::service
