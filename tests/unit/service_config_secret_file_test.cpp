// Kafka secrets from files (kafka.properties.<key>_file, VIGIL_KAFKA_PROPERTIES__<KEY>_FILE):
// the value is read from the file, is redacted in --print-config, and errors name the key,
// never the secret.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pipeline/config/service_config.h"
#include "support/test_support.h"

namespace vigil::config {
namespace {

std::filesystem::path WriteFile(const std::string& name, const std::string& content) {
  const auto path = std::filesystem::temp_directory_path() / vigil::testing::UniqueName(name);
  std::ofstream(path) << content;
  return path;
}

TEST(ServiceConfigSecretFile, EnvironmentFileBecomesTheProperty) {
  const auto file = WriteFile("password", "s3cret-value\n");
  const auto config =
      LoadServiceConfig("", {{"VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE", file.string()},
                             {"VIGIL_KAFKA_PROPERTIES__SASL__USERNAME", "vigil"}});
  EXPECT_EQ(config.kafka.properties.at("sasl.password"), "s3cret-value");  // line break removed
  EXPECT_EQ(config.kafka.properties.count("sasl.password_file"), 0u);
  EXPECT_EQ(config.kafka.properties.at("sasl.username"), "vigil");
  const auto described = DescribeConfig(config);
  EXPECT_EQ(described.find("s3cret-value"), std::string::npos) << described;
  EXPECT_NE(described.find("<redacted>"), std::string::npos);
  std::filesystem::remove(file);
}

TEST(ServiceConfigSecretFile, YamlFileKeyWorksInProducerProperties) {
  const auto secret = WriteFile("keypass", "pem-pass");
  const auto yaml = WriteFile(
      "config.yaml",
      "kafka:\n  producer_properties:\n    ssl.key.password_file: " + secret.string() + "\n");
  const auto config = LoadServiceConfig(yaml, {});
  EXPECT_EQ(config.kafka.producer_properties.at("ssl.key.password"), "pem-pass");
  std::filesystem::remove(secret);
  std::filesystem::remove(yaml);
}

TEST(ServiceConfigSecretFile, MissingFileNamesTheKey) {
  try {
    LoadServiceConfig(
        "", {{"VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE", "/nonexistent/vigil/password"}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "kafka.properties.sasl.password_file");
    EXPECT_NE(std::string(e.what()).find("cannot read the file"), std::string::npos) << e.what();
  }
}

TEST(ServiceConfigSecretFile, ValueAndFileTogetherIsAnError) {
  const auto file = WriteFile("password", "from-file");
  EXPECT_THROW(
      LoadServiceConfig("", {{"VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE", file.string()},
                             {"VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD", "inline"}}),
      ConfigError);
  std::filesystem::remove(file);
}

TEST(ServiceConfigSecretFile, EmptyFileIsAnError) {
  const auto file = WriteFile("password", "\n");
  EXPECT_THROW(
      LoadServiceConfig("", {{"VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE", file.string()}}),
      ConfigError);
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace vigil::config
