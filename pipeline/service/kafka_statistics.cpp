#include "pipeline/service/kafka_statistics.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>

namespace vigil::service {

std::optional<KafkaStatistics> ParseKafkaStatistics(std::string_view json, std::string_view topic) {
  google::protobuf::Struct stats;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &stats).ok()) {
    return std::nullopt;
  }
  const auto& f = stats.fields();
  const auto number = [&](const char* key) {
    auto it = f.find(key);
    return it == f.end() ? 0.0 : it->second.number_value();
  };
  KafkaStatistics out;
  out.client = f.count("type") ? f.at("type").string_value() : "unknown";
  for (const char* key : {"msg_cnt", "msg_size", "tx", "rx", "txmsgs", "rxmsgs", "replyq"}) {
    out.counters.emplace_back(key, number(key));
  }
  if (out.client != "consumer" || !f.count("topics")) return out;
  const auto& topics = f.at("topics").struct_value().fields();
  const auto it = topics.find(std::string(topic));
  if (it == topics.end()) return out;
  const auto& fields = it->second.struct_value().fields();
  if (!fields.count("partitions")) return out;
  double total = 0;
  for (const auto& [name, partition] : fields.at("partitions").struct_value().fields()) {
    if (name == "-1") continue;
    const auto& pf = partition.struct_value().fields();
    if (!pf.count("consumer_lag") || !pf.count("fetch_state")) continue;
    if (pf.at("fetch_state").string_value() == "none") continue;  // not assigned here
    const double lag = std::max(0.0, pf.at("consumer_lag").number_value());
    int32_t id = 0;
    try {
      id = std::stoi(name);
    } catch (const std::exception&) {
      continue;
    }
    out.partition_lag[id] = lag;
    total += lag;
  }
  out.total_lag = total;
  return out;
}

}  // namespace vigil::service
