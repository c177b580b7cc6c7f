// `vigil run` configuration: YAML, environment overrides, and errors that name key and value.
#include "pipeline/config/service_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pipeline/analysis/operator_registry.h"
#include "support/test_support.h"

namespace vigil::config {
namespace {

std::filesystem::path Write(const std::string& yaml) {
  const auto path =
      std::filesystem::temp_directory_path() / (testing::UniqueName("config") + ".yaml");
  std::ofstream(path) << yaml;
  return path;
}

std::string ErrorOf(const std::string& yaml, const std::map<std::string, std::string>& env = {}) {
  const auto path = Write(yaml);
  try {
    LoadServiceConfig(path, env);
  } catch (const ConfigError& e) {
    std::filesystem::remove(path);
    return e.what();
  }
  std::filesystem::remove(path);
  return "";
}

TEST(ServiceConfig, DefaultsRunEveryRegisteredOperator) {
  const auto c = LoadServiceConfig("", {});
  EXPECT_EQ(c.kafka.bootstrap_servers, "localhost:9092");
  EXPECT_EQ(c.analysis.operators.size(), analysis::Operators().size());
  EXPECT_FALSE(c.kafka.instance_id.empty());
}

TEST(ServiceConfig, EnvironmentOverridesTheFile) {
  const auto path = Write("kafka:\n  bootstrap_servers: a:1\n  group_id: g\nlimits:\n  lanes: 3\n");
  const auto c = LoadServiceConfig(path, {{"VIGIL_KAFKA_BOOTSTRAP_SERVERS", "b:2"},
                                          {"VIGIL_LIMITS_TRANSACTION_INTERVAL_MS", "250"},
                                          {"VIGIL_KAFKA_PROPERTIES__SECURITY__PROTOCOL", "ssl"},
                                          {"VIGIL_KAFKA_PORT", "1234"}});  // not a key: ignored
  std::filesystem::remove(path);
  EXPECT_EQ(c.kafka.bootstrap_servers, "b:2");
  EXPECT_EQ(c.kafka.group_id, "g");
  EXPECT_EQ(c.limits.lanes, 3);
  EXPECT_EQ(c.limits.transaction_interval_ms, 250);
  EXPECT_EQ(c.kafka.properties.at("security.protocol"), "ssl");
  EXPECT_EQ(c.kafka.instance_id.rfind("g-", 0), 0u) << "default instance id derives from the group";
}

TEST(ServiceConfig, OperatorsByListOrMap) {
  if (analysis::Operators().empty()) GTEST_SKIP() << "no operator registered";
  const std::string name(analysis::Operators().front().name);
  auto path = Write("analysis:\n  operators: [" + name + "]\n");
  EXPECT_EQ(LoadServiceConfig(path, {}).analysis.operators.size(), 1u);
  std::filesystem::remove(path);
  path = Write("analysis:\n  operators: none\n");
  const auto c = LoadServiceConfig(
      path, {{"VIGIL_ANALYSIS_OPERATORS__" +
                  [&] {
                    std::string env;
                    for (char ch : name)
                      env += ch == '.' ? std::string("__")
                                       : std::string(1, static_cast<char>(std::toupper(ch)));
                    return env;
                  }() +
                  "__SOME_KEY",
              "4.5"}});
  std::filesystem::remove(path);
  ASSERT_EQ(c.analysis.operators.size(), 1u);
  EXPECT_EQ(c.analysis.operators[0].name, name);
  EXPECT_EQ(c.analysis.operators[0].parameters.at("some_key"), 4.5);
}

TEST(ServiceConfig, ErrorsNameKeyAndValue) {
  EXPECT_NE(
      ErrorOf("kafka:\n  bootstrap_server: x\n").find("kafka.bootstrap_server = x: unknown key"),
      std::string::npos);
  EXPECT_NE(ErrorOf("nonsense: 1\n").find("nonsense = 1: unknown key"), std::string::npos);
  EXPECT_NE(ErrorOf("limits:\n  lanes: -1\n").find("limits.lanes = -1: must be in [0, 1024]"),
            std::string::npos);
  EXPECT_NE(ErrorOf("limits:\n  lanes: [1, 2]\n").find("limits.lanes"), std::string::npos);
  EXPECT_NE(ErrorOf("metrics:\n  port: 70000\n").find("metrics.port = 70000"), std::string::npos);
  EXPECT_NE(ErrorOf("analysis:\n  minute_aggregates: maybe\n")
                .find("analysis.minute_aggregates = maybe: not a boolean"),
            std::string::npos);
  EXPECT_NE(ErrorOf("", {{"VIGIL_METRICS_PORT", "http"}})
                .find("metrics.port (from VIGIL_METRICS_PORT) = http"),
            std::string::npos);
  // A property not known to be harmless is never echoed: it may be a misspelt secret.
  EXPECT_NE(ErrorOf("kafka:\n  properties:\n    sasl.password: hunter2\n    no.such: 1\n")
                .find("kafka.properties.no.such = <redacted>"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("kafka:\n  properties:\n    no.such.password: hunter2\n").find("hunter2"),
            std::string::npos)
      << "secrets are never echoed";
  EXPECT_NE(ErrorOf("limits:\n  transaction_interval_ms: 5000\n  snapshot_interval_ms: 1000\n")
                .find("limits.snapshot_interval_ms = 1000"),
            std::string::npos);
  EXPECT_TRUE(ErrorOf("kafka:\n  group_id: ok\n").empty());
}

// Exactly-once processing rests on these three; a pass-through property must not undo it.
TEST(ServiceConfig, PropertiesThatBreakExactlyOnceAreRefused) {
  for (const std::string key : {"enable.auto.commit", "isolation.level", "transactional.id"}) {
    const std::string error = ErrorOf("kafka:\n  properties:\n    " + key + ": x\n");
    EXPECT_NE(error.find("kafka.properties." + key + " = x: set by Vigil itself"),
              std::string::npos)
        << key << ": " << error;
  }
  EXPECT_NE(ErrorOf("", {{"VIGIL_KAFKA_CONSUMER_PROPERTIES__ENABLE__AUTO__COMMIT", "true"}})
                .find("kafka.consumer_properties.enable.auto.commit"),
            std::string::npos);
  EXPECT_NE(ErrorOf("kafka:\n  producer_properties:\n    transactional.id: other\n")
                .find("kafka.producer_properties.transactional.id"),
            std::string::npos);
}

TEST(ServiceConfig, EvictionBeforeTheDeviceOfflineAlertIsRefused) {
  const std::string error = ErrorOf("limits:\n  evict_idle_after_s: 200\n");
  EXPECT_NE(error.find("limits.evict_idle_after_s = 200"), std::string::npos) << error;
  EXPECT_NE(error.find("330 s"), std::string::npos) << error;
  EXPECT_EQ(ErrorOf("limits:\n  evict_idle_after_s: 0\n"), "");
  EXPECT_EQ(ErrorOf("limits:\n  evict_idle_after_s: 331\n"), "");
}

TEST(ServiceConfig, ProducerThatCannotCarryTheLargestOutputIsRefused) {
  const std::string error =
      ErrorOf("kafka:\n  producer_properties:\n    message.max.bytes: 500000\n");
  EXPECT_NE(error.find("kafka.producer_properties.message.max.bytes = 500000"), std::string::npos)
      << error;
  EXPECT_NE(error.find("limits.max_output_bytes"), std::string::npos) << error;
  EXPECT_EQ(ErrorOf("kafka:\n  producer_properties:\n    message.max.bytes: 500000\n"
                    "limits:\n  max_output_bytes: 400000\n"),
            "");
}

// Only properties known to hold no secret are shown; the deny-list of substrings missed these.
TEST(ServiceConfig, PrintConfigShowsOnlyAllowListedPropertiesInClear) {
  const auto path = Write(
      "kafka:\n  properties:\n    security.protocol: SASL_SSL\n    sasl.username: vigil\n"
      "    ssl.key.pem: PRIVATE-KEY-BYTES\n"
      "    sasl.oauthbearer.config: principal=vigil clientSecret=OAUTH-SECRET\n"
      "logging:\n  patient_hash_salt: SALT-VALUE\n");
  const auto config = LoadServiceConfig(path, {});
  std::filesystem::remove(path);
  const std::string described = DescribeConfig(config);
  EXPECT_NE(described.find("SASL_SSL"), std::string::npos);
  EXPECT_NE(described.find("vigil"), std::string::npos);
  for (const std::string secret : {"PRIVATE-KEY-BYTES", "OAUTH-SECRET", "SALT-VALUE"}) {
    EXPECT_EQ(described.find(secret), std::string::npos) << secret << " shown:\n" << described;
  }
  for (const std::string key :
       {"kafka.properties.ssl.key.pem", "kafka.properties.sasl.oauthbearer.config"}) {
    const auto line = described.find(key);
    ASSERT_NE(line, std::string::npos) << key;
    EXPECT_NE(described.substr(line, described.find('\n', line) - line).find("<redacted>"),
              std::string::npos)
        << key;
  }
}

// A misspelt variable used to be ignored, leaving its key at the default without a word.
TEST(ServiceConfig, EnvironmentVariableNamingNoKeyIsRefused) {
  const std::string error = ErrorOf("", {{"VIGIL_LIMIT_LANES", "3"}});
  EXPECT_NE(error.find("VIGIL_LIMIT_LANES"), std::string::npos) << error;
  EXPECT_NE(error.find("no configuration key"), std::string::npos) << error;
  EXPECT_NE(ErrorOf("", {{"VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD", "hunter2"}})
                .find("VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("", {{"VIGIL_KAFKA_PROPERTIES_SASL_PASSWORD", "hunter2"}}).find("hunter2"),
            std::string::npos)
      << "the value of an unknown variable may be a secret";
  // The scripts' and tests' own variables share the prefix and are left alone.
  EXPECT_TRUE(ErrorOf("", {{"VIGIL_KAFKA_PORT", "19092"},
                           {"VIGIL_SHARED_DATA", "/data"},
                           {"VIGIL_TEST_KAFKA", "localhost:19092"}})
                  .empty());
}

}  // namespace
}  // namespace vigil::config
