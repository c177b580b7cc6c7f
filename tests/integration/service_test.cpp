// `vigil run` against the real test broker: the Kafka path gives the same alerts and aggregates
// as the offline analysis of the same records, health and metrics answer, SIGTERM exits within
// 10 s, and configuration errors name the key and the value.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "pipeline/analysis/operator_registry.h"
#include "support/service_harness.h"
#include "support/test_support.h"
#include "vigil/v1/patient_config.pb.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;

void ExpectSameOutputs(const PatientOutputs& expected, const PatientOutputs& got) {
  EXPECT_EQ(expected.alerts.size(), got.alerts.size());
  for (const auto& [patient, alerts] : expected.alerts) {
    auto it = got.alerts.find(patient);
    ASSERT_TRUE(it != got.alerts.end()) << "no alerts for " << patient;
    EXPECT_EQ(alerts.size(), it->second.size()) << patient;
    EXPECT_TRUE(alerts == it->second) << "alerts of " << patient << " differ";
  }
  EXPECT_EQ(expected.aggregates.size(), got.aggregates.size());
  for (const auto& [patient, aggregates] : expected.aggregates) {
    auto it = got.aggregates.find(patient);
    ASSERT_TRUE(it != got.aggregates.end()) << "no aggregates for " << patient;
    EXPECT_EQ(aggregates.size(), it->second.size()) << patient;
    EXPECT_TRUE(aggregates == it->second) << "aggregates of " << patient << " differ";
  }
}

TEST(Service, KafkaPathEqualsOfflineAnalysisAndStopsOnSigterm) {
  const auto name = UniqueName("svc-e2e");
  const auto topics = CreateTestTopics(name);
  const auto envelopes = SyntheticEnvelopes(name, 12, 150, 37);
  ProduceEnvelopes(topics.telemetry, envelopes);

  const int port = FreePort();
  ServiceProcess service("e2e", ServiceYaml(topics, name + "-group", name + "-0", port));
  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 90s)) << service.Log();
  EXPECT_EQ(HttpGet(port + 1, "/healthz"), 200);
  EXPECT_EQ(HttpGet(port + 1, "/readyz"), 200);
  std::string metrics;
  ASSERT_EQ(HttpGet(port, "/metrics", &metrics), 200);
  EXPECT_EQ(MetricValue(metrics, R"(vigil_events_total{event="records_in"})"),
            static_cast<double>(envelopes.size()));
  EXPECT_EQ(MetricValue(metrics, R"(vigil_events_total{event="records_processed"})"),
            static_cast<double>(envelopes.size()));
  EXPECT_GT(MetricValue(metrics, R"(vigil_events_total{event="transactions_committed"})"), 0);
  EXPECT_NE(metrics.find("vigil_latency_seconds_count{kind=\"end_to_end\"}"), std::string::npos);

  std::chrono::milliseconds took{};
  const auto code = service.Terminate(10s, &took);
  ASSERT_TRUE(code.has_value()) << "did not exit within 10 s\n" << service.Log();
  EXPECT_EQ(*code, 0) << service.Log();
  EXPECT_LT(took, 10s);
  std::cout << "SIGTERM to exit: " << took.count() << " ms\n";
  // Logs never carry raw patient ids.
  EXPECT_EQ(service.Log().find(name + "-0000"), std::string::npos);

  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  const auto expected = OfflineReference(ReadCommitted(topics.telemetry), config, 300);
  const auto got = OutputsFromTopics(topics);
  ASSERT_GT(expected.total(), 0u) << "the reference produced nothing: the comparison would be void";
  ExpectSameOutputs(expected, got);
}

// Issue 16 item 4: a patient's settings (alarm limits among them) apply from its first record.
// The patient-config topic is read to its end before any telemetry is analysed, so patient 0,
// whose rate limits are set to 30/40 bpm, is analysed with them from the start: its outputs equal
// the offline analysis with those limits throughout, the others' the defaults.
TEST(Service, PatientConfigAppliesFromTheFirstRecord) {
  const auto name = UniqueName("svc-cfg");
  const auto topics = CreateTestTopics(name, 2);
  const auto envelopes = SyntheticEnvelopes(name, 3, 60, 0);
  const std::string patient = envelopes[0].patient_id();
  v1::PatientConfig pc;
  pc.set_patient_id(patient);
  pc.set_version(1);
  (*pc.mutable_parameters())["ecg.arrhythmia.hr_low_bpm"] = 30;
  (*pc.mutable_parameters())["ecg.arrhythmia.hr_high_bpm"] = 40;
  ProduceRaw(topics.patient_config, {{patient, pc.SerializeAsString()}});
  ProduceEnvelopes(topics.telemetry, envelopes);

  const int port = FreePort();
  ServiceProcess service("cfg", ServiceYaml(topics, name + "-group", name + "-0", port));
  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 90s)) << service.Log();
  ASSERT_EQ(service.Terminate(10s), std::optional<int>(0)) << service.Log();
  EXPECT_NE(service.Log().find("patient configuration read to its end: 1 records"),
            std::string::npos)
      << service.Log();

  analysis::AnalysisConfig defaults;
  for (const auto& e : analysis::Operators())
    defaults.operators.push_back({std::string(e.name), {}});
  analysis::AnalysisConfig limits = defaults;
  for (auto& op : limits.operators) {
    if (op.name == "ecg.arrhythmia") op.parameters = {{"hr_low_bpm", 30}, {"hr_high_bpm", 40}};
  }
  std::vector<kafka::Record> mine, others;
  for (auto& r : ReadCommitted(topics.telemetry)) (r.key == patient ? mine : others).push_back(r);
  auto expected = OfflineReference(others, defaults, 300);
  const auto overridden = OfflineReference(mine, limits, 300);
  ASSERT_TRUE(overridden.alerts.count(patient)) << "the 40 bpm limit raises a tachycardia alert";
  expected.alerts[patient] = overridden.alerts.at(patient);
  if (overridden.aggregates.count(patient))
    expected.aggregates[patient] = overridden.aggregates.at(patient);
  ExpectSameOutputs(expected, OutputsFromTopics(topics));
}

// Issue 16 item 6: the bytes in flight are bounded too (limits.max_in_flight_bytes), not only
// the record count. With a 64 KiB bound the loop waits for the lanes again and again, and the
// outputs are still exactly the offline analysis.
TEST(Service, InFlightBytesAreBounded) {
  const auto name = UniqueName("svc-bytes");
  const auto topics = CreateTestTopics(name, 2);
  const auto envelopes = SyntheticEnvelopes(name, 8, 120, 0);
  ProduceEnvelopes(topics.telemetry, envelopes);
  const int port = FreePort();
  ServiceProcess service("bytes", ServiceYaml(topics, name + "-group", name + "-0", port),
                         {{"VIGIL_LIMITS_MAX_IN_FLIGHT_BYTES", "65536"}});
  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 90s)) << service.Log();
  std::string metrics;
  ASSERT_EQ(HttpGet(port, "/metrics", &metrics), 200);
  EXPECT_GT(MetricValue(metrics, R"(vigil_events_total{event="backpressure_waits"})"), 0)
      << metrics;
  EXPECT_NE(metrics.find(R"(vigil_state{kind="in_flight_bytes"})"), std::string::npos);
  ASSERT_EQ(service.Terminate(10s), std::optional<int>(0)) << service.Log();
  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  const auto expected = OfflineReference(ReadCommitted(topics.telemetry), config, 300);
  ASSERT_GT(expected.total(), 0u);
  ExpectSameOutputs(expected, OutputsFromTopics(topics));
}

TEST(ServiceCli, ConfigErrorsNameKeyAndValue) {
  struct Case {
    std::string yaml;
    std::map<std::string, std::string> env;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"kafka:\n  bootstrap_server: x\n", {}, "kafka.bootstrap_server = x: unknown key"},
      {"limits:\n  lanes: many\n", {}, "limits.lanes = many: not an integer"},
      {"limits:\n  transaction_interval_ms: 5\n", {}, "limits.transaction_interval_ms = 5"},
      {"",
       {{"VIGIL_LIMITS_MAX_IN_FLIGHT_RECORDS", "0"}},
       "limits.max_in_flight_records (from VIGIL_LIMITS_MAX_IN_FLIGHT_RECORDS) = 0"},
      {"kafka:\n  auto_offset_reset: sometimes\n", {}, "kafka.auto_offset_reset = sometimes"},
      {"kafka:\n  properties:\n    linger.ms: -5\n", {}, "kafka.properties.linger.ms = -5"},
      {"analysis:\n  operators:\n    no.such.operator: {}\n",
       {},
       "analysis.operators.no.such.operator = no.such.operator: unknown operator"},
      {"analysis:\n  reorder_tolerance_s: nan\n", {}, "analysis.reorder_tolerance_s = nan"},
      {"",
       {{"VIGIL_ANALYSIS_OPERATORS__NOPE__X", "1"}},
       "analysis.operators.nope.x (from VIGIL_ANALYSIS_OPERATORS__NOPE__X) = 1"},
  };
  for (const auto& c : cases) {
    const auto file = std::filesystem::temp_directory_path() / (UniqueName("bad-config") + ".yaml");
    std::ofstream(file) << c.yaml;
    std::string output;
    const int code = RunVigil({"run", "--config", file.string()}, &output, c.env);
    EXPECT_EQ(code, 2) << c.yaml << output;
    EXPECT_NE(output.find(c.expected), std::string::npos)
        << "expected '" << c.expected << "' in: " << output;
    std::filesystem::remove(file);
  }
  // Environment overrides apply on top of the file.
  std::string output;
  ASSERT_EQ(RunVigil({"run", "--config", (SourceDir() / "deploy/local/vigil.yaml").string(),
                      "--print-config"},
                     &output,
                     {{"VIGIL_KAFKA_BOOTSTRAP_SERVERS", "broker-7:9093"},
                      {"VIGIL_KAFKA_PROPERTIES__SECURITY__PROTOCOL", "ssl"}}),
            0)
      << output;
  EXPECT_NE(output.find("broker-7:9093"), std::string::npos) << output;
  EXPECT_NE(output.find("kafka.properties.security.protocol"), std::string::npos) << output;
}

}  // namespace
}  // namespace vigil::testing
