// What the service reads from librdkafka's statistics (statistics.interval.ms): a few client
// counters, and the consumer lag of the partitions of one topic assigned to this instance. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::service {

struct KafkaStatistics {
  std::string client;  // "consumer", "producer" (librdkafka's "type")
  // msg_cnt, msg_size, tx, rx, txmsgs, rxmsgs, replyq (0 when absent).
  std::vector<std::pair<std::string, double>> counters;
  // A consumer's statistics with `topic`: lag of every partition assigned here, and their sum.
  std::map<int32_t, double> partition_lag;
  std::optional<double> total_lag;
};

// nullopt when `json` is not statistics JSON.
std::optional<KafkaStatistics> ParseKafkaStatistics(std::string_view json, std::string_view topic);

}  // namespace vigil::service
