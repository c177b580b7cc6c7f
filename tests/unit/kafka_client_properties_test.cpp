// The service's Kafka client properties and statistics parsing: pure functions, so the
// exactly-once settings and the lag metrics are checked without a broker.
#include "pipeline/service/kafka_client_properties.h"

#include <gtest/gtest.h>

#include "pipeline/service/kafka_statistics.h"

namespace vigil::service {
namespace {

config::KafkaSettings Settings() {
  config::KafkaSettings k;
  k.bootstrap_servers = "broker:9092";
  k.group_id = "vigil";
  k.instance_id = "vigil-0";
  k.properties = {{"security.protocol", "SASL_SSL"}};
  k.producer_properties = {{"compression.type", "zstd"}};
  k.consumer_properties = {{"fetch.min.bytes", "1000"}};
  return k;
}

TEST(KafkaClientProperties, ExactlyOnceSettingsAreFixed) {
  const auto p = KafkaClientProperties(Settings());
  EXPECT_EQ(p.producer.at("transactional.id"), "vigil-0");
  EXPECT_EQ(p.consumer.at("isolation.level"), "read_committed");
  EXPECT_EQ(p.consumer.at("enable.auto.commit"), "false");
  EXPECT_EQ(p.consumer.at("enable.auto.offset.store"), "false");
  EXPECT_EQ(p.consumer.at("group.id"), "vigil");
  EXPECT_EQ(p.consumer.at("partition.assignment.strategy"), "cooperative-sticky");
  // The patient-config reader reads committed records, never commits, and is in no shared group.
  EXPECT_EQ(p.patient_config.at("isolation.level"), "read_committed");
  EXPECT_EQ(p.patient_config.at("enable.auto.commit"), "false");
  EXPECT_EQ(p.patient_config.at("group.id"), "vigil-0-patient-config");
  EXPECT_EQ(p.patient_config.count("statistics.interval.ms"), 0u);
}

TEST(KafkaClientProperties, OperatorPropertiesReachTheirClients) {
  const auto p = KafkaClientProperties(Settings());
  for (const auto* props : {&p.producer, &p.consumer, &p.patient_config}) {
    EXPECT_EQ(props->at("security.protocol"), "SASL_SSL");
    EXPECT_EQ(props->at("bootstrap.servers"), "broker:9092");
  }
  EXPECT_EQ(p.producer.at("compression.type"), "zstd");
  EXPECT_EQ(p.consumer.count("compression.type"), 0u);
  EXPECT_EQ(p.consumer.at("fetch.min.bytes"), "1000");
  EXPECT_EQ(p.producer.count("fetch.min.bytes"), 0u);
}

TEST(KafkaStatistics, ConsumerLagOfAssignedPartitionsOnly) {
  const auto stats = ParseKafkaStatistics(R"({
    "type": "consumer", "msg_cnt": 12, "rx": 5,
    "topics": {"vigil.telemetry.v1": {"partitions": {
      "0": {"consumer_lag": 40, "fetch_state": "active"},
      "1": {"consumer_lag": 7, "fetch_state": "none"},
      "2": {"consumer_lag": -1, "fetch_state": "active"},
      "-1": {"consumer_lag": 99, "fetch_state": "active"}}}}})",
                                          "vigil.telemetry.v1");
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->client, "consumer");
  EXPECT_EQ(stats->counters.front(), (std::pair<std::string, double>{"msg_cnt", 12}));
  ASSERT_TRUE(stats->total_lag.has_value());
  EXPECT_EQ(*stats->total_lag, 40);
  EXPECT_EQ(stats->partition_lag.size(), 2u);  // 0 and 2 (-1 lag reads as 0); 1 is not assigned
  EXPECT_EQ(stats->partition_lag.at(2), 0);
}

TEST(KafkaStatistics, OtherJsonIsNotStatistics) {
  EXPECT_FALSE(ParseKafkaStatistics("not json", "t").has_value());
  const auto producer = ParseKafkaStatistics(R"({"type": "producer", "txmsgs": 3})", "t");
  ASSERT_TRUE(producer.has_value());
  EXPECT_FALSE(producer->total_lag.has_value());
}

}  // namespace
}  // namespace vigil::service
