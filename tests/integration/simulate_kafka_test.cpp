// `vigil simulate --kafka` against the real test broker: 5 patients x 30 s at full speed give
// one record per patient per second on vigil.telemetry.v1, keyed by patient id, each key in
// one partition with its frames in sequence order, and a truth file equal to the in-process
// simulation's.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "pipeline/kafka/kafka_client.h"
#include "pipeline/simulate/simulated_telemetry.h"
#include "pipeline/topics.h"
#include "support/test_support.h"
#include "vigil/v1/telemetry.pb.h"

namespace {

using namespace std::chrono_literals;

TEST(SimulateKafka, FivePatientsThirtySecondsKeyedByPatient) {
  // Patient indices unique to this run, so records of other runs or tests are told apart.
  const uint32_t first = 10000 + static_cast<uint32_t>(getpid() % 80000);
  const auto truth =
      std::filesystem::temp_directory_path() / vigil::testing::UniqueName("simulate-truth");
  const std::string command = fmt::format(
      "'{}' simulate --patients 5 --duration 30 --speed max --seed 3 --first-patient {} "
      "--event-rate 500 --kafka {} --truth '{}'",
      vigil::testing::VigilBinary().string(), first, vigil::testing::KafkaBootstrap(),
      truth.string());
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  std::set<std::string> ours;
  for (uint32_t i = 0; i < 5; ++i) ours.insert(fmt::format("sim-{:05d}", first + i));

  vigil::kafka::Consumer consumer({{"bootstrap.servers", vigil::testing::KafkaBootstrap()},
                                   {"group.id", vigil::testing::UniqueName("simulate-reader")},
                                   {"enable.auto.commit", "false"}});
  consumer.AssignAllFromBeginning(std::string(vigil::topics::kTelemetry), 10s);
  std::map<std::string, int> per_key;
  std::map<std::string, std::set<int32_t>> partitions;
  std::map<std::pair<std::string, int>, uint64_t> last_sequence;
  for (const auto& record : consumer.ReadUntilIdle(5s)) {
    if (!record.key || ours.count(*record.key) == 0) continue;
    ++per_key[*record.key];
    partitions[*record.key].insert(record.partition);
    ASSERT_TRUE(record.value.has_value());
    vigil::v1::TelemetryEnvelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(*record.value));
    EXPECT_EQ(envelope.patient_id(), *record.key);
    EXPECT_GT(envelope.frames_size(), 0);
    for (const auto& frame : envelope.frames()) {
      auto& last = last_sequence[{frame.device_id(), static_cast<int>(frame.kind())}];
      EXPECT_EQ(frame.sequence(), last + 1) << frame.device_id();
      last = frame.sequence();
    }
  }
  consumer.Close();

  EXPECT_EQ(per_key.size(), 5u);
  for (const auto& key : ours) {
    EXPECT_EQ(per_key[key], 30) << key;
    EXPECT_EQ(partitions[key].size(), 1u) << key;
  }

  // The truth file holds exactly the truth of the same cohort generated in-process.
  vigil::simulate::CohortOptions options;
  options.patients = 5;
  options.first_index = first;
  options.simulation.seed = 3;
  options.simulation.event_rate = 500;
  options.simulation.end_us = options.simulation.start_us + 30 * vigil::ops::kMicrosPerSecond;
  vigil::simulate::SimulatedCohort cohort(options);
  std::vector<std::string> expected;
  vigil::v1::TelemetryEnvelope envelope;
  std::vector<vigil::sim::TruthEvent> events;
  while (!cohort.finished()) {
    for (uint32_t i = 0; i < cohort.size(); ++i) {
      cohort.NextEnvelope(i, envelope, events);
      for (const auto& e : events) {
        expected.push_back(
            vigil::sim::TruthLine(cohort.profile(i).patient_id, e, options.simulation.start_us));
      }
      events.clear();
    }
  }
  std::ifstream in(truth);
  ASSERT_TRUE(in.good());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  EXPECT_EQ(lines, expected);
  std::filesystem::remove(truth);
}

}  // namespace
