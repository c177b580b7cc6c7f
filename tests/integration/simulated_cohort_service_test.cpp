// A simulated cohort through the service gives the alerts the offline analysis of the same
// cohort gives. The cohort's 30-day adherence histories arrive as old device session events in
// each patient's first record, together with the first live frames: the service must hand them to
// the operators before the frames (as the offline replay does), or the history is lost and no
// adherence alert is ever raised through Kafka (which was the case until this test existed).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "support/service_harness.h"
#include "support/test_support.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;

// alert_id|state of every alert line whose condition is one of `conditions`.
std::set<std::string> Alerts(const std::string& text, const std::set<std::string>& conditions) {
  static const std::regex id("\"alertId\":\"([0-9a-f]+)\"");
  static const std::regex condition("\"condition\":\"(CONDITION_[A-Z_]+)\"");
  static const std::regex state("\"state\":\"(ALERT_STATE_[A-Z]+)\"");
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"type\":\"alert\"") == std::string::npos) continue;
    std::smatch i, c, s;
    if (!std::regex_search(line, i, id) || !std::regex_search(line, c, condition) ||
        !std::regex_search(line, s, state) || !conditions.count(c[1])) {
      continue;
    }
    out.insert(fmt::format("{}|{}|{}", c[1].str(), i[1].str(), s[1].str()));
  }
  return out;
}

TEST(SimulatedCohortService, AdherenceAlertsFromTheUploadedHistoryEqualTheOfflineAnalysis) {
  const auto name = UniqueName("svc-cohort");
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::create_directories(dir);
  // The topics are this test's own, so the cohort can be the same on every run.
  const std::vector<std::string> cohort = {"simulate", "--patients", "12", "--duration",
                                           "60",       "--seed",     "2"};

  std::string log;
  auto offline_args = cohort;
  offline_args.insert(offline_args.end(), {"--out", (dir / "offline.jsonl").string()});
  ASSERT_EQ(RunVigil(offline_args, &log), 0) << log;
  std::ifstream in(dir / "offline.jsonl");
  const std::string offline((std::istreambuf_iterator<char>(in)), {});

  const auto topics = CreateTestTopics(name, 2);
  auto kafka_args = cohort;
  kafka_args.insert(kafka_args.end(),
                    {"--speed", "max", "--kafka", KafkaBootstrap(), "--topic", topics.telemetry});
  ASSERT_EQ(RunVigil(kafka_args, &log), 0) << log;
  {
    ServiceProcess service("cohort", ServiceYaml(topics, name + "-group", name + "-0", FreePort()));
    ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 240s)) << service.Log();
    ASSERT_TRUE(service.Terminate(10s).has_value());
  }
  std::string published;
  ASSERT_EQ(RunVigil({"tail", topics.alerts, "--kafka", KafkaBootstrap(), "--from-beginning",
                      "--until-idle", "2"},
                     &published),
            0)
      << published;

  const std::set<std::string> adherence = {"CONDITION_ADHERENCE_DECLINE",
                                           "CONDITION_NON_COMPLIANCE"};
  const auto offline_alerts = Alerts(offline, adherence);
  const auto kafka_alerts = Alerts(published, adherence);
  // Every RAISED record offline is published; the offline run also ends the recording, which
  // clears what is still open (a stream never ends), so CLEARED records may be missing only.
  std::set<std::string> raised;
  for (const auto& a : offline_alerts) {
    if (a.ends_with("|ALERT_STATE_RAISED")) raised.insert(a);
  }
  ASSERT_FALSE(raised.empty()) << "the cohort (seed 2, 12 patients) has adherence histories "
                                  "that the offline analysis alerts on";
  for (const auto& a : raised) EXPECT_TRUE(kafka_alerts.count(a)) << "not published: " << a;
  for (const auto& a : kafka_alerts) EXPECT_TRUE(offline_alerts.count(a)) << "not offline: " << a;
  std::cout << raised.size() << " adherence alerts raised offline, " << kafka_alerts.size()
            << " adherence alert records through Kafka\n";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vigil::testing
