// Recordings through Kafka: `vigil replay <recording> --kafka` -> `vigil run` -> `vigil tail`
// gives the same alert and aggregate lines as the offline `vigil replay <recording>`. The only
// allowed difference is at the end: the offline replay finishes the recording (closing open
// episodes and windows), a stream never ends - so the Kafka lines must be a prefix of the
// offline lines, missing at most what Finish() adds.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "support/service_harness.h"
#include "support/test_support.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> Lines(const std::string& text, const std::string& type) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("{\"type\":\"" + type + "\"", 0) == 0) out.push_back(line);
  }
  return out;
}

// Per-line comparison of a prefix; returns the number of offline lines the stream lacks.
size_t ExpectPrefix(const std::vector<std::string>& kafka, const std::vector<std::string>& offline,
                    const std::string& what) {
  EXPECT_LE(kafka.size(), offline.size()) << what << ": more lines through Kafka than offline";
  for (size_t i = 0; i < std::min(kafka.size(), offline.size()); ++i) {
    EXPECT_EQ(kafka[i], offline[i]) << what << " line " << i;
    if (kafka[i] != offline[i]) break;
  }
  return offline.size() > kafka.size() ? offline.size() - kafka.size() : 0;
}

class RecordingThroughKafka : public ::testing::TestWithParam<std::string> {};

TEST_P(RecordingThroughKafka, SameAlertsAndAggregatesAsOfflineReplay) {
  const std::filesystem::path recording = SharedData() / GetParam();
  const auto name = UniqueName("svc-rec");
  const std::string patient = name + "-patient";

  std::string offline;
  const auto out_file = std::filesystem::temp_directory_path() / (name + ".jsonl");
  std::string diagnostics;
  const int offline_code = RunVigil({"replay", recording.string(), "--patient", patient,
                                     "--no-beats", "--out", out_file.string()},
                                    &diagnostics);
  ASSERT_EQ(offline_code, 0) << diagnostics;
  {
    std::ifstream in(out_file);
    std::stringstream s;
    s << in.rdbuf();
    offline = s.str();
  }
  std::filesystem::remove(out_file);

  const auto topics = CreateTestTopics(name, 2);
  std::string output;
  const int produce_code =
      RunVigil({"replay", recording.string(), "--kafka", KafkaBootstrap(), "--topic",
                topics.telemetry, "--patient", patient, "--speed", "max"},
               &output);
  ASSERT_EQ(produce_code, 0) << output;
  const int port = FreePort();
  ServiceProcess service("recording", ServiceYaml(topics, name + "-group", name + "-0", port));
  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 240s)) << service.Log();
  ASSERT_TRUE(service.Terminate(10s).has_value());

  std::string alerts, aggregates;
  ASSERT_EQ(RunVigil({"tail", topics.alerts, "--kafka", KafkaBootstrap(), "--from-beginning",
                      "--until-idle", "2"},
                     &alerts),
            0)
      << alerts;
  ASSERT_EQ(RunVigil({"tail", topics.aggregates, "--kafka", KafkaBootstrap(), "--from-beginning",
                      "--until-idle", "2"},
                     &aggregates),
            0)
      << aggregates;
  const auto offline_alerts = Lines(offline, "alert");
  const auto offline_aggregates = Lines(offline, "aggregate");
  const auto kafka_alerts = Lines(alerts, "alert");
  const auto kafka_aggregates = Lines(aggregates, "aggregate");
  ASSERT_FALSE(offline_aggregates.empty()) << "the offline replay produced no aggregates";
  EXPECT_FALSE(kafka_aggregates.empty());
  const size_t missing_alerts = ExpectPrefix(kafka_alerts, offline_alerts, "alerts");
  const size_t missing_aggregates =
      ExpectPrefix(kafka_aggregates, offline_aggregates, "aggregates");
  // What only Finish() adds at the end of a finite recording: the clearing records of episodes
  // still open, the minutes still inside the aggregator's allowed lateness (at most 2), and the
  // therapy-day and rolling 30-day windows of a night that never reached its noon.
  EXPECT_LE(missing_alerts, 6u);
  int minutes = 0;
  for (size_t i = kafka_aggregates.size(); i < offline_aggregates.size(); ++i) {
    const auto& line = offline_aggregates[i];
    if (line.find("WINDOW_KIND_MINUTE") != std::string::npos) {
      ++minutes;
    } else {
      EXPECT_TRUE(line.find("WINDOW_KIND_THERAPY_DAY") != std::string::npos ||
                  line.find("WINDOW_KIND_ROLLING_30_DAYS") != std::string::npos)
          << "only Finish() may add this aggregate: " << line;
    }
  }
  EXPECT_LE(minutes, 2) << "more than the open minutes missing from the Kafka path";
  EXPECT_LE(missing_aggregates, 4u);

  // `vigil report --patient --kafka`: the report of what the service committed shows every
  // published alert record, with an ECG strip (and its marked beats) for each arrhythmia alert
  // the offline report of the same recording has a strip for.
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::create_directories(dir);
  const auto yaml = dir / "service.yaml";
  std::ofstream(yaml) << ServiceYaml(topics, name + "-group", name + "-0", port);
  std::string report_log, offline_log;
  ASSERT_EQ(RunVigil({"report", "--patient", patient, "--kafka", KafkaBootstrap(), "--config",
                      yaml.string(), "--out", (dir / "kafka.html").string()},
                     &report_log),
            0)
      << report_log;
  ASSERT_EQ(RunVigil({"report", recording.string(), "--patient", patient, "--out",
                      (dir / "offline.html").string()},
                     &offline_log),
            0)
      << offline_log;
  const auto read = [](const std::filesystem::path& f) {
    std::ifstream in(f);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  const auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
  };
  const std::string kafka_html = read(dir / "kafka.html"),
                    offline_html = read(dir / "offline.html");
  EXPECT_NE(report_log.find(fmt::format("{} published alert records", kafka_alerts.size())),
            std::string::npos)
      << report_log;
  EXPECT_NE(kafka_html.find("as published on " + topics.alerts), std::string::npos);
  const size_t kafka_strips = count(kafka_html, "<figure class=\"strip\">");
  const size_t offline_strips = count(offline_html, "<figure class=\"strip\">");
  // The strips of alerts raised in the last moments of the recording may be missing (a stream
  // does not finish); none may be extra.
  EXPECT_LE(kafka_strips, offline_strips);
  EXPECT_GE(kafka_strips + missing_alerts, offline_strips);
  if (GetParam() == "mitdb/201") {
    EXPECT_GE(kafka_strips, 1u) << "record 201 has AF alerts: their ECG must be shown";
    EXPECT_GT(count(kafka_html, "class=\"beat beat-"), 10u) << "detected beats are marked";
  }
  std::filesystem::remove_all(dir);
  std::cout << GetParam() << ": report from Kafka " << kafka_strips << " ECG strips, offline "
            << offline_strips << "\n";

  std::cout << GetParam() << ": " << kafka_alerts.size() << "/" << offline_alerts.size()
            << " alerts, " << kafka_aggregates.size() << "/" << offline_aggregates.size()
            << " aggregates through Kafka/offline\n";
}

INSTANTIATE_TEST_SUITE_P(Recordings, RecordingThroughKafka,
                         ::testing::Values("mitdb/201", "resmed/aircurve10-vauto"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string n = param.param;
                           for (auto& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace vigil::testing
