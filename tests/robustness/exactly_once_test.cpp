// Faults against the real test broker: kill -9 at random moments, a second instance taking
// over, hostile input. The committed outputs must equal the offline analysis of the committed
// telemetry exactly (nothing lost, nothing twice), and every input record is accounted for.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "pipeline/analysis/operator_registry.h"
#include "support/service_harness.h"
#include "support/test_support.h"
#include "vigil/v1/alert.pb.h"
#include "vigil/v1/dead_letter.pb.h"
#include "vigil/v1/patient_config.pb.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;

analysis::AnalysisConfig DefaultAnalysis() {
  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  return config;
}

// Produces `envelopes` in slices of `slice` records every `pause`, like live devices. A joining
// thread: a failed ASSERT that leaves the test early waits for it instead of aborting the whole
// binary (std::terminate) and losing the failure message.
std::jthread PacedProducer(const std::string& topic,
                           const std::vector<v1::TelemetryEnvelope>& envelopes, size_t slice,
                           std::chrono::milliseconds pause) {
  return std::jthread([topic, &envelopes, slice, pause] {
    kafka::Producer producer({{"bootstrap.servers", KafkaBootstrap()},
                              {"enable.idempotence", "true"},
                              {"linger.ms", "5"}});
    for (size_t i = 0; i < envelopes.size(); ++i) {
      producer.Produce(topic, envelopes[i].patient_id(), envelopes[i].SerializeAsString());
      if ((i + 1) % slice == 0) {
        producer.Poll(0ms);
        std::this_thread::sleep_for(pause);
      }
    }
    producer.Flush(60s);
  });
}

// Produces envelopes [from, to), runs a service until its group has committed them all, stops it
// with SIGTERM (exit 0 expected) and returns its log.
std::string RunToEnd(const TopicSet& topics, const std::string& group, const std::string& yaml,
                     const std::string& label, const std::vector<v1::TelemetryEnvelope>& envelopes,
                     size_t from, size_t to, const std::map<std::string, std::string>& env = {}) {
  ProduceEnvelopes(topics.telemetry, {envelopes.begin() + static_cast<std::ptrdiff_t>(from),
                                      envelopes.begin() + static_cast<std::ptrdiff_t>(to)});
  ServiceProcess service(label, yaml, env);
  EXPECT_TRUE(WaitForGroupCaughtUp(group, topics.telemetry, 60s)) << service.Log();
  EXPECT_EQ(service.Terminate(10s), std::optional<int>(0)) << service.Log();
  return service.Log();
}

void ExpectExactlyTheReference(const TopicSet& topics) {
  const auto expected = OfflineReference(ReadCommitted(topics.telemetry), DefaultAnalysis(), 300);
  const auto got = OutputsFromTopics(topics);
  ASSERT_GT(expected.total(), 0u) << "the reference produced nothing: the comparison would be void";
  EXPECT_EQ(expected.total(), got.total());
  for (const auto& [patient, alerts] : expected.alerts) {
    const auto it = got.alerts.find(patient);
    ASSERT_TRUE(it != got.alerts.end()) << "alerts lost for " << patient;
    EXPECT_TRUE(alerts == it->second) << patient << ": " << alerts.size() << " alerts expected, "
                                      << it->second.size() << " committed";
  }
  for (const auto& [patient, aggregates] : expected.aggregates) {
    const auto it = got.aggregates.find(patient);
    ASSERT_TRUE(it != got.aggregates.end()) << "aggregates lost for " << patient;
    EXPECT_TRUE(aggregates == it->second)
        << patient << ": " << aggregates.size() << " aggregates expected, " << it->second.size()
        << " committed";
  }
  for (const auto& [patient, alerts] : got.alerts) {
    EXPECT_TRUE(expected.alerts.count(patient)) << "alerts for a patient without any: " << patient;
  }
}

TEST(ExactlyOnce, KillNineAtRandomMomentsThenRestartEqualsUninterruptedRun) {
  const auto name = UniqueName("svc-kill");
  const auto topics = CreateTestTopics(name);
  const auto envelopes = SyntheticEnvelopes(name, 16, 300, 23);
  const int port = FreePort();
  const auto yaml = ServiceYaml(topics, name + "-group", name + "-0", port);
  // Static membership: a restarted instance takes its partitions back at once instead of
  // waiting for the session of the killed one to expire.
  const std::map<std::string, std::string> env = {
      {"VIGIL_KAFKA_CONSUMER_PROPERTIES__GROUP__INSTANCE__ID", name + "-member-0"}};
  auto producer = PacedProducer(topics.telemetry, envelopes, 32, 40ms);

  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> lifetime_ms(1500, 4000);
  const int kills = 4;
  for (int i = 0; i < kills; ++i) {
    ServiceProcess service(fmt::format("kill-{}", i), yaml, env);
    const int ms = lifetime_ms(random);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    ASSERT_TRUE(service.Running()) << service.Log();
    service.Kill();
    std::cout << "kill -9 after " << ms << " ms\n";
  }
  producer.join();
  ServiceProcess final_run("kill-final", yaml, env);
  // The killed instances may already have committed everything: the group is then caught up
  // before this one has even started. Let it join first, so that it is its clean shutdown
  // (not a signal during start-up) that the exit code below shows.
  ASSERT_TRUE(final_run.WaitForLog("assigned telemetry partitions", 60s)) << final_run.Log();
  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 120s)) << final_run.Log();
  const auto code = final_run.Terminate(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << final_run.Log();
  ExpectExactlyTheReference(topics);
}

// Samples the group's committed offsets of `topic` every 50 ms on a thread of its own and
// records any partition whose committed offset ever went down.
class CommittedOffsetWatch {
 public:
  CommittedOffsetWatch(const std::string& group, const std::string& topic, int partitions)
      : thread_([this, group, topic, partitions](std::stop_token stop) {
          kafka::Consumer probe({{"bootstrap.servers", KafkaBootstrap()},
                                 {"group.id", group},
                                 {"enable.auto.commit", "false"}});
          std::vector<int64_t> last(static_cast<size_t>(partitions), -1);
          while (!stop.stop_requested()) {
            std::vector<RdKafka::TopicPartition*> tps;
            for (int p = 0; p < partitions; ++p)
              tps.push_back(RdKafka::TopicPartition::create(topic, p));
            if (probe.handle().committed(tps, 5000) == RdKafka::ERR_NO_ERROR) {
              ++samples_;
              for (auto* tp : tps) {
                auto& before = last[static_cast<size_t>(tp->partition())];
                if (tp->offset() >= 0 && tp->offset() < before) {
                  std::lock_guard lock(mutex_);
                  decreases_.push_back(
                      fmt::format("partition {}: {} -> {}", tp->partition(), before, tp->offset()));
                }
                if (tp->offset() >= 0) before = tp->offset();
              }
            }
            RdKafka::TopicPartition::destroy(tps);
            std::this_thread::sleep_for(50ms);
          }
          probe.Close();
        }) {}
  std::vector<std::string> Stop() {
    thread_.request_stop();
    thread_.join();
    std::lock_guard lock(mutex_);
    return decreases_;
  }
  int samples() const { return samples_.load(); }

 private:
  std::mutex mutex_;
  std::vector<std::string> decreases_;
  std::atomic<int> samples_{0};
  std::jthread thread_;
};

// Issue 16 item 3. Snapshots only at the start (600 s interval), 100 ms transactions: a restart
// re-reads almost everything silently. Killed during that catch-up, the old code had already
// committed offsets below the group's position, so the next restart published again everything
// between them. The committed offsets must never go down, and the outputs must be exactly once.
TEST(ExactlyOnce, KillDuringCatchUpNeverMovesTheCommittedOffsetBack) {
  const auto name = UniqueName("svc-catchup");
  const auto topics = CreateTestTopics(name, 2);
  const auto envelopes = SyntheticEnvelopes(name, 100, 500, 0);  // 50k records
  const int port = FreePort();
  auto yaml = ServiceYaml(topics, name + "-group", name + "-0", port);
  auto replace = [&yaml](const std::string& from, const std::string& to) {
    const auto at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  };
  replace("transaction_interval_ms: 200", "transaction_interval_ms: 100");
  replace("snapshot_interval_ms: 1000", "snapshot_interval_ms: 600000");
  replace("lanes: 2\n  threads: 2", "lanes: 1\n  threads: 1");
  const std::map<std::string, std::string> env = {
      {"VIGIL_KAFKA_CONSUMER_PROPERTIES__GROUP__INSTANCE__ID", name + "-member-0"}};
  CommittedOffsetWatch watch(name + "-group", topics.telemetry, topics.partitions);
  {
    ServiceProcess first("catchup-first", yaml, env);
    ASSERT_TRUE(first.WaitForLog("assigned telemetry partitions", 60s)) << first.Log();
    ProduceEnvelopes(topics.telemetry, envelopes);
    ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 180s)) << first.Log();
    first.Kill();
  }
  {
    ServiceProcess second("catchup-second", yaml, env);
    ASSERT_TRUE(second.WaitForLog("patients of ", 60s)) << second.Log();
    // Kill once the catch-up has committed at least twice, while it still has records to re-read.
    std::string metrics;
    double replayed = 0, committed = 0, committed_at_start = -1;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (HttpGet(port, "/metrics", &metrics) == 200) {
        replayed = MetricValue(metrics, R"(vigil_events_total{event="records_replayed"})");
        committed = MetricValue(metrics, R"(vigil_events_total{event="transactions_committed"})");
        if (committed_at_start < 0 && replayed > 0) committed_at_start = committed;
        if (committed_at_start >= 0 && committed >= committed_at_start + 2) break;
      }
      std::this_thread::sleep_for(20ms);
    }
    second.Kill();
    ASSERT_GT(replayed, 0) << second.Log();
    ASSERT_LT(replayed, 0.9 * static_cast<double>(envelopes.size()))
        << "the kill came after the catch-up: the test proves nothing\n"
        << second.Log();
    std::cout << "killed after re-reading " << replayed << " of " << envelopes.size()
              << " records\n";
  }
  ServiceProcess third("catchup-third", yaml, env);
  ASSERT_TRUE(third.WaitForLog("assigned telemetry partitions", 60s)) << third.Log();
  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 180s)) << third.Log();
  const auto code = third.Terminate(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << third.Log();
  const auto decreases = watch.Stop();
  EXPECT_GT(watch.samples(), 10);
  EXPECT_TRUE(decreases.empty()) << "committed offsets went back: " << decreases.front();
  ExpectExactlyTheReference(topics);
}

// Issue 16 item 4. A restore that fails used to leave the partitions assigned and analysed with
// empty state (whose next snapshot then overwrote the good one). Now a failed restore is retried
// by the recovery before anything is analysed, and when that fails too the process exits non-zero
// without consuming.
TEST(ExactlyOnce, FailedRestoreNeverAnalysesWithEmptyState) {
  const auto name = UniqueName("svc-restore");
  const auto topics = CreateTestTopics(name, 2);
  const auto envelopes = SyntheticEnvelopes(name, 4, 90, 0);
  const size_t part = envelopes.size() / 3;
  const int port = FreePort();
  const auto yaml = ServiceYaml(topics, name + "-group", name + "-0", port);
  const std::string group = name + "-group";
  RunToEnd(topics, group, yaml, "restore-first", envelopes, 0, part);
  // One failed restore: retried before any record of the partitions is analysed.
  const auto once = RunToEnd(topics, group, yaml, "restore-once", envelopes, part, 2 * part,
                             {{"VIGIL_FAULTS_RESTORE_FAILURES", "1"}});
  EXPECT_NE(once.find("injected restore failure"), std::string::npos) << once;
  const size_t outputs_before = OutputsFromTopics(topics).total();
  ProduceEnvelopes(topics.telemetry,
                   {envelopes.begin() + static_cast<std::ptrdiff_t>(2 * part), envelopes.end()});
  {
    // Restores that keep failing: the process stops, consuming nothing.
    ServiceProcess third("restore-never", yaml, {{"VIGIL_FAULTS_RESTORE_FAILURES", "1000"}});
    const auto code = third.Wait(60s);
    ASSERT_TRUE(code.has_value()) << "still running with partitions it could not restore\n"
                                  << third.Log();
    EXPECT_NE(*code, 0) << third.Log();
    EXPECT_FALSE(WaitForGroupCaughtUp(group, topics.telemetry, 1s)) << "it committed offsets";
    EXPECT_EQ(OutputsFromTopics(topics).total(), outputs_before) << "it published outputs";
  }
  ServiceProcess last("restore-last", yaml);
  ASSERT_TRUE(WaitForGroupCaughtUp(group, topics.telemetry, 60s)) << last.Log();
  ASSERT_EQ(last.Terminate(10s), std::optional<int>(0)) << last.Log();
  ExpectExactlyTheReference(topics);
}

// Issue 16 item 4, second half. Patient 0's newest snapshot record is corrupt; its previous one
// is older than the other patients' newest. The restore must re-read from that older one for
// patient 0 (and skip those records for the others), not from the others' newest, which would
// silently leave out patient 0's records in between.
TEST(ExactlyOnce, CorruptNewestSnapshotReReadsFromThePreviousOne) {
  const auto name = UniqueName("svc-corrupt");
  // One partition: patient 0 shares it with the others, so their newer snapshots set where the
  // old code re-read from.
  const auto topics = CreateTestTopics(name, 1);
  const auto envelopes = SyntheticEnvelopes(name, 4, 90, 0);
  const size_t part = envelopes.size() / 3;
  const std::string group = name + "-group";
  const int port = FreePort();
  const auto yaml = ServiceYaml(topics, group, name + "-0", port);
  RunToEnd(topics, group, yaml, "corrupt-first", envelopes, 0, part);
  const std::string patient = envelopes[0].patient_id();
  std::optional<kafka::Record> older;  // patient 0's snapshot after the first third
  for (auto& r : ReadCommitted(topics.state)) {
    if (r.key == patient) older = r;
  }
  ASSERT_TRUE(older.has_value()) << "the clean stop wrote a snapshot of " << patient;
  RunToEnd(topics, group, yaml, "corrupt-second", envelopes, part, 2 * part);
  {
    // The older snapshot again, then a corrupt one: the newest record of patient 0.
    kafka::Producer producer({{"bootstrap.servers", KafkaBootstrap()}});
    producer.Produce(topics.state, patient, older->value.value_or(""), older->partition);
    producer.Produce(topics.state, patient, "\xff\xff\xff not a snapshot", older->partition);
    producer.Flush(30s);
  }
  const auto log =
      RunToEnd(topics, group, yaml, "corrupt-third", envelopes, 2 * part, envelopes.size());
  EXPECT_NE(log.find("undecodable snapshot of patient"), std::string::npos) << log;
  ExpectExactlyTheReference(topics);
}

// Issue 16 item 6: a patient silent for limits.evict_idle_after_s is kept as its compressed
// snapshot and woken by its next record. The same telemetry (with Kafka timestamps that leave
// patient 0 silent for 25 s) through a service that hibernates and one that never does: the
// outputs are identical, byte for byte.
TEST(ExactlyOnce, HibernatedIdlePatientWakesWithExactlyItsState) {
  const auto name = UniqueName("svc-idle");
  const auto envelopes = SyntheticEnvelopes(name, 3, 60, 0);
  const std::string quiet = envelopes[0].patient_id();
  const int64_t start_us = envelopes[0].frames(0).first_sample_time_us();
  const int64_t base_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count() -
                          120'000;
  struct Timed {
    std::string key, value;
    int64_t ms;
  };
  std::vector<Timed> records;
  for (const auto& e : envelopes) {
    const int64_t offset_ms = (e.frames(0).first_sample_time_us() - start_us) / 1000;
    if (e.patient_id() == quiet && offset_ms >= 20'000 && offset_ms < 45'000) continue;
    records.push_back({e.patient_id(), e.SerializeAsString(), base_ms + offset_ms});
  }
  const std::map<std::string, std::string> fast = {{"VIGIL_LIMITS_DEVICE_OFFLINE_AFTER_S", "5"},
                                                   {"VIGIL_LIMITS_DEVICE_CHECK_INTERVAL_S", "1"}};
  std::vector<TopicSet> sets;
  std::vector<std::unique_ptr<ServiceProcess>> services;
  std::vector<int> ports;
  std::vector<std::string> groups;
  for (const std::string evict : {"10", "0"}) {
    const auto set_name = name + "-evict" + evict;
    groups.push_back(set_name + "-group");
    sets.push_back(CreateTestTopics(set_name, 1));
    kafka::Producer producer(
        {{"bootstrap.servers", KafkaBootstrap()}, {"enable.idempotence", "true"}});
    for (const auto& r : records) producer.Produce(sets.back().telemetry, r.key, r.value, 0, r.ms);
    producer.Flush(60s);
    ports.push_back(FreePort());
    auto env = fast;
    env["VIGIL_LIMITS_EVICT_IDLE_AFTER_S"] = evict;
    services.push_back(std::make_unique<ServiceProcess>(
        "idle-" + evict,
        ServiceYaml(sets.back(), set_name + "-group", set_name + "-0", ports.back()), env));
  }
  for (size_t i = 0; i < sets.size(); ++i) {
    ASSERT_TRUE(WaitForGroupCaughtUp(groups[i], sets[i].telemetry, 90s)) << services[i]->Log();
  }
  std::string metrics;
  ASSERT_EQ(HttpGet(ports[0], "/metrics", &metrics), 200);
  EXPECT_GE(MetricValue(metrics, R"(vigil_events_total{event="hibernations"})"), 1) << metrics;
  EXPECT_EQ(MetricValue(metrics, R"(vigil_state{kind="patients_hibernated"})"), 0)
      << "patient 0 woke at its next record";
  ASSERT_EQ(HttpGet(ports[1], "/metrics", &metrics), 200);
  EXPECT_EQ(MetricValue(metrics, R"(vigil_events_total{event="hibernations"})"), 0);
  for (auto& s : services) EXPECT_EQ(s->Terminate(10s), std::optional<int>(0)) << s->Log();
  const auto hibernating = OutputsFromTopics(sets[0]);
  const auto awake = OutputsFromTopics(sets[1]);
  ASSERT_GT(awake.total(), 0u);
  ASSERT_TRUE(awake.alerts.count(quiet)) << "patient 0's silence raises alerts";
  EXPECT_EQ(hibernating.total(), awake.total());
  EXPECT_TRUE(hibernating.alerts == awake.alerts);
  EXPECT_TRUE(hibernating.aggregates == awake.aggregates);
}

TEST(ExactlyOnce, SecondInstanceTakesOverWithRestoredState) {
  const auto name = UniqueName("svc-two");
  const auto topics = CreateTestTopics(name);
  const auto envelopes = SyntheticEnvelopes(name, 16, 240, 19);
  const int port_a = FreePort();
  const int port_b = FreePort();
  ServiceProcess a("two-a", ServiceYaml(topics, name + "-group", name + "-a", port_a));
  ServiceProcess b("two-b", ServiceYaml(topics, name + "-group", name + "-b", port_b));
  auto producer = PacedProducer(topics.telemetry, envelopes, 16, 40ms);
  // Joining the group takes a heartbeat interval and two cooperative rounds.
  std::string metrics;
  double a_assigned = 0, b_assigned = 0, a_processed = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(250ms);
    if (HttpGet(port_a, "/metrics", &metrics) == 200) {
      a_assigned = MetricValue(metrics, R"(vigil_state{kind="assigned_partitions"})");
      a_processed = MetricValue(metrics, R"(vigil_events_total{event="records_processed"})");
    }
    if (HttpGet(port_b, "/metrics", &metrics) == 200) {
      b_assigned = MetricValue(metrics, R"(vigil_state{kind="assigned_partitions"})");
    }
    // Stop `a` once it has state worth handing over.
    if (a_assigned > 0 && b_assigned > 0 && a_assigned + b_assigned == topics.partitions &&
        a_processed >= 300) {
      break;
    }
  }
  EXPECT_EQ(a_assigned + b_assigned, topics.partitions) << "both instances share the partitions";
  EXPECT_GT(a_assigned, 0);
  ASSERT_GT(b_assigned, 0) << b.Log();
  ASSERT_GE(a_processed, 300);
  const double b_restores_before =
      MetricValue(metrics, R"(vigil_latency_seconds_count{kind="state_restore"})");
  const auto code = a.Terminate(10s);  // mid-stream
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << a.Log();
  producer.join();
  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 120s)) << b.Log();
  ASSERT_EQ(HttpGet(port_b, "/metrics", &metrics), 200);
  EXPECT_EQ(MetricValue(metrics, R"(vigil_state{kind="assigned_partitions"})"), topics.partitions);
  EXPECT_GT(MetricValue(metrics, R"(vigil_latency_seconds_count{kind="state_restore"})"),
            b_restores_before)
      << "b restored the partitions it took over";
  EXPECT_GT(MetricValue(metrics, R"(vigil_events_total{event="records_processed"})"), 0);
  ASSERT_TRUE(b.Terminate(10s).has_value());
  const auto log = b.Log();
  EXPECT_NE(log.find(fmt::format("restored {} patients of {} partitions", 8, a_assigned)),
            std::string::npos)
      << "b restored the 8 patients of a's partitions:\n"
      << log;
  ExpectExactlyTheReference(topics);
}

TEST(ExactlyOnce, DeviceOfflineFoundByATickIsNotPublishedAgainAfterARestore) {
  // Two patients in one partition. Patient A falls silent; B's records keep the partition's
  // record clock going, and the device check that ticks with it finds A's device offline. The
  // instance is killed after committing that alert but before any snapshot newer than A's
  // silence, so its successor re-reads the tick silently: the alert must not come out again.
  const auto name = UniqueName("svc-tick");
  const auto topics = CreateTestTopics(name, 1);
  const auto envelopes = SyntheticEnvelopes(name, 2, 12, 0);
  ASSERT_EQ(envelopes.size(), 24u);
  const std::string silent = envelopes[0].patient_id();
  const int port = FreePort();
  const auto yaml = ServiceYaml(topics, name + "-group", name + "-0", port);
  const std::map<std::string, std::string> env = {
      {"VIGIL_LIMITS_DEVICE_OFFLINE_AFTER_S", "1"},
      {"VIGIL_LIMITS_DEVICE_CHECK_INTERVAL_S", "0.5"},
      {"VIGIL_LIMITS_SNAPSHOT_INTERVAL_MS", "600000"},
      {"VIGIL_KAFKA_CONSUMER_PROPERTIES__GROUP__INSTANCE__ID", name + "-member-0"}};
  const auto count_offline = [&] {
    int raised = 0;
    for (const auto& r : ReadCommitted(topics.alerts)) {
      v1::Alert alert;
      if (!alert.ParseFromString(r.value.value_or(""))) continue;
      raised += alert.patient_id() == silent && alert.condition() == v1::CONDITION_DEVICE_OFFLINE &&
                alert.state() == v1::ALERT_STATE_RAISED;
    }
    return raised;
  };
  {
    ServiceProcess first("tick-0", yaml, env);
    ASSERT_TRUE(first.WaitForLog("assigned telemetry partitions", 60s)) << first.Log();
    kafka::Producer producer({{"bootstrap.servers", KafkaBootstrap()}, {"linger.ms", "0"}});
    // Both for 2 s of device time, then B alone, one record every 250 ms of wall time (the
    // records' Kafka timestamps are the device-check clock).
    for (size_t i = 0; i < envelopes.size(); ++i) {
      if (i >= 4 && envelopes[i].patient_id() == silent) continue;
      producer.Produce(topics.telemetry, envelopes[i].patient_id(),
                       envelopes[i].SerializeAsString());
      producer.Flush(10s);
      std::this_thread::sleep_for(250ms);
    }
    ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 60s)) << first.Log();
    ASSERT_EQ(count_offline(), 1) << "the tick raised the silent device once:\n" << first.Log();
    first.Kill();
  }
  ServiceProcess second("tick-1", yaml, env);
  ASSERT_TRUE(second.WaitForLog("assigned telemetry partitions", 60s)) << second.Log();
  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 60s)) << second.Log();
  // "partition 0: 2 patients at offset S, committed C: N records to re-analyse silently"
  const auto log = second.Log();
  const auto at = log.find(" records to re-analyse silently");
  ASSERT_NE(at, std::string::npos) << log;
  const auto number = log.rfind(' ', at - 1);
  EXPECT_GE(std::stoi(log.substr(number + 1, at - number - 1)), 8)
      << "the successor re-read from a snapshot older than the silence:\n"
      << log;
  const auto code = second.Terminate(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << second.Log();
  EXPECT_EQ(count_offline(), 1) << "published again by the re-read:\n" << second.Log();
}

TEST(Robustness, HostileInputIsDeadLetteredAndAccountedFor) {
  const auto name = UniqueName("svc-bad");
  const auto topics = CreateTestTopics(name, 2);
  const int port = FreePort();
  ServiceProcess service("bad", ServiceYaml(topics, name + "-group", name + "-0", port));

  auto good = SyntheticEnvelopes(name, 3, 20, 0);
  // Patient 0's frame 5 (envelope 15: three patients per second) arrives last, long after the
  // analysis declared it lost: its frames are too late.
  const auto late = good[15];
  std::vector<std::pair<std::string, std::string>> records;
  for (size_t i = 0; i < good.size(); ++i) {
    if (i != 15) records.emplace_back(good[i].patient_id(), good[i].SerializeAsString());
  }
  const std::string patient = good[0].patient_id();
  const std::string valid = good[0].SerializeAsString();
  std::map<v1::DeadLetterReason, int> expected_reasons;
  auto bad = [&](v1::DeadLetterReason reason, std::string key, std::string value) {
    records.emplace_back(std::move(key), std::move(value));
    ++expected_reasons[reason];
  };
  bad(v1::DEAD_LETTER_REASON_UNDECODABLE, patient, "\xff\xff\xff\xff garbage");
  bad(v1::DEAD_LETTER_REASON_UNDECODABLE, patient, valid.substr(0, valid.size() / 2));  // truncated
  v1::Alert wrong_schema;  // parses as an envelope whose "patient id" is the alert id
  wrong_schema.set_alert_id("not-telemetry");
  wrong_schema.set_condition(v1::CONDITION_APNEA);
  bad(v1::DEAD_LETTER_REASON_KEY_MISMATCH, patient, wrong_schema.SerializeAsString());
  auto envelope = good[0];
  envelope.clear_patient_id();
  bad(v1::DEAD_LETTER_REASON_MISSING_PATIENT, patient, envelope.SerializeAsString());
  envelope = good[0];
  bad(v1::DEAD_LETTER_REASON_KEY_MISMATCH, "someone-else", envelope.SerializeAsString());
  envelope.mutable_frames(0)->set_gain(std::nan(""));
  bad(v1::DEAD_LETTER_REASON_NON_FINITE_VALUE, patient, envelope.SerializeAsString());
  envelope = good[0];
  envelope.mutable_frames(1)->set_sample_rate_hz(0);
  bad(v1::DEAD_LETTER_REASON_INVALID_FRAME, patient, envelope.SerializeAsString());
  envelope = good[0];
  envelope.mutable_frames(0)->set_kind(static_cast<v1::SignalKind>(99));
  bad(v1::DEAD_LETTER_REASON_INVALID_FRAME, patient, envelope.SerializeAsString());
  envelope = good[0];
  envelope.mutable_frames(0)->set_gain(0);
  bad(v1::DEAD_LETTER_REASON_INVALID_FRAME, patient, envelope.SerializeAsString());
  envelope = good[0];
  for (int i = 0; i < 120000; ++i) envelope.mutable_frames(0)->add_samples(1);
  bad(v1::DEAD_LETTER_REASON_OVERSIZED, patient, envelope.SerializeAsString());
  // Duplicated and far out-of-order frames: accepted records with dead-lettered items.
  const size_t whole_record_letters = records.size() - (good.size() - 1);
  records.emplace_back(patient, good[3].SerializeAsString());  // duplicate: 3 frames
  records.emplace_back(late.patient_id(), late.SerializeAsString());
  ProduceRaw(topics.telemetry, records);
  // A bad per-patient override is rejected (dead letter) and the previous settings stay.
  v1::PatientConfig pc;
  pc.set_patient_id(patient);
  pc.set_version(3);
  (*pc.mutable_parameters())["no.such.operator_key"] = 1;
  ProduceRaw(topics.patient_config, {{patient, pc.SerializeAsString()}});

  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 60s)) << service.Log();
  std::this_thread::sleep_for(1s);  // the config reader runs beside the telemetry
  std::string metrics;
  ASSERT_EQ(HttpGet(port + 1, "/healthz"), 200) << "the service keeps running";
  ASSERT_EQ(HttpGet(port, "/metrics", &metrics), 200);
  const double in = MetricValue(metrics, R"(vigil_events_total{event="records_in"})");
  const double processed = MetricValue(metrics, R"(vigil_events_total{event="records_processed"})");
  EXPECT_EQ(in, static_cast<double>(records.size()));
  EXPECT_EQ(processed + static_cast<double>(whole_record_letters), in) << metrics;

  ASSERT_TRUE(service.Terminate(10s).has_value());
  std::map<v1::DeadLetterReason, int> reasons;
  std::set<std::pair<int, int64_t>> whole;
  int config_letters = 0;
  for (const auto& r : ReadCommitted(topics.dead_letter)) {
    v1::DeadLetter letter;
    ASSERT_TRUE(letter.ParseFromString(r.value.value_or("")));
    if (letter.topic() == topics.patient_config) {
      ++config_letters;
      continue;
    }
    EXPECT_EQ(letter.topic(), topics.telemetry);
    ++reasons[letter.reason()];
    // Duplicate and too-late frames are items of records that were otherwise processed; every
    // other reason rejects the whole record (item_index then names the offending frame).
    const bool item_only = letter.reason() == v1::DEAD_LETTER_REASON_DUPLICATE ||
                           letter.reason() == v1::DEAD_LETTER_REASON_TOO_LATE;
    if (!item_only) {
      EXPECT_TRUE(whole.insert({letter.partition(), letter.offset()}).second)
          << "dead-lettered twice";
      EXPECT_FALSE(letter.original_value().empty()) << "the original bytes travel with the letter";
    }
  }
  EXPECT_EQ(whole.size(), whole_record_letters);
  for (const auto& [reason, count] : expected_reasons) {
    EXPECT_EQ(reasons[reason], count) << v1::DeadLetterReason_Name(reason);
  }
  EXPECT_EQ(reasons[v1::DEAD_LETTER_REASON_DUPLICATE], 3) << "one per duplicated frame";
  EXPECT_EQ(reasons[v1::DEAD_LETTER_REASON_TOO_LATE], 3) << "one per late frame";
  EXPECT_EQ(config_letters, 1) << "the bad override is dead-lettered";
  EXPECT_NE(service.Log().find("rejected, previous settings stay"), std::string::npos);
}

// Issue 16, items 1 and 2, through the service: a record larger than the broker's default
// message size, one larger than limits.max_record_bytes (whose dead letter would exceed the
// broker's limit if it carried the whole record), a sequence jump of 2^62, a sequence restart and
// sample times at +-INT64_MAX/2, all ahead of ordinary telemetry in the same partition. The
// service keeps committing, stays healthy, exits 0 on SIGTERM, and its outputs are exactly the
// offline analysis of what was committed.
TEST(Robustness, OversizedRecordsAndHostileSequencesNeverStopTheOthers) {
  const auto name = UniqueName("svc-big");
  const auto topics = CreateTestTopics(name, 2, {{"max.message.bytes", "8388608"}});
  const int port = FreePort();
  ServiceProcess service("big", ServiceYaml(topics, name + "-group", name + "-0", port));

  const auto good = SyntheticEnvelopes(name, 3, 20, 0);
  const std::string patient = good[0].patient_id();
  v1::SignalFrame ecg;  // the first ECG frame of patient 0, sent again by a hostile device
  for (const auto& f : good[0].frames()) {
    if (f.kind() == v1::SIGNAL_KIND_ECG) ecg = f;
  }
  ASSERT_EQ(ecg.kind(), v1::SIGNAL_KIND_ECG) << "the synthetic telemetry has an ECG";
  ecg.set_device_id("hostile-device");
  const int64_t t0 = ecg.first_sample_time_us();
  auto frame = [&](uint64_t sequence, int64_t first_us, int samples) {
    v1::SignalFrame f = ecg;
    f.set_sequence(sequence);
    f.set_first_sample_time_us(first_us);
    f.clear_samples();
    // +-2^21: four bytes per sample on the wire.
    for (int i = 0; i < samples; ++i) f.add_samples(i % 2 ? (1 << 21) : -(1 << 21));
    return f;
  };
  auto envelope = [&](std::vector<v1::SignalFrame> frames) {
    v1::TelemetryEnvelope e;
    e.set_patient_id(patient);
    for (auto& f : frames) *e.add_frames() = std::move(f);
    return e.SerializeAsString();
  };
  const int64_t frame_us = static_cast<int64_t>(100000 / ecg.sample_rate_hz() * 1e6);
  std::vector<std::pair<std::string, std::string>> records;
  std::vector<v1::SignalFrame> big;
  for (int i = 0; i < 4; ++i) big.push_back(frame(1 + i, t0 + i * frame_us, 100000));
  records.emplace_back(patient, envelope(big));  // ~1.6 MB, analysed
  ASSERT_GT(records.back().second.size(), 1500000u);
  std::vector<v1::SignalFrame> huge;
  for (int i = 0; i < 14; ++i) huge.push_back(frame(5 + i, t0 + (4 + i) * frame_us, 100000));
  records.emplace_back(patient, envelope(huge));  // ~5.6 MB: OVERSIZED
  const size_t huge_bytes = records.back().second.size();
  ASSERT_GT(huge_bytes, size_t{5} << 20);
  const int64_t after = t0 + 4 * frame_us;
  records.emplace_back(patient, envelope({frame(uint64_t{1} << 62, after + 10'000'000, 250)}));
  records.emplace_back(patient, envelope({frame(1, after + 40'000'000, 250)}));  // a reboot
  records.emplace_back(patient, envelope({frame(2, std::numeric_limits<int64_t>::max() / 2, 250)}));
  records.emplace_back(patient,
                       envelope({frame(2, -(std::numeric_limits<int64_t>::max() / 2), 250)}));
  for (const auto& e : good) records.emplace_back(e.patient_id(), e.SerializeAsString());
  ProduceRaw(topics.telemetry, records, {{"message.max.bytes", "8388608"}});

  ASSERT_TRUE(WaitForGroupCaughtUp(name + "-group", topics.telemetry, 90s)) << service.Log();
  EXPECT_EQ(HttpGet(port + 1, "/healthz"), 200) << service.Log();
  const auto code = service.Terminate(10s);
  ASSERT_TRUE(code.has_value()) << service.Log();
  EXPECT_EQ(*code, 0) << service.Log();

  std::map<v1::DeadLetterReason, int> reasons;
  for (const auto& r : ReadCommitted(topics.dead_letter)) {
    v1::DeadLetter letter;
    ASSERT_TRUE(letter.ParseFromString(r.value.value_or("")));
    ++reasons[letter.reason()];
    if (letter.reason() == v1::DEAD_LETTER_REASON_OVERSIZED) {
      EXPECT_TRUE(letter.original_value_truncated());
      EXPECT_EQ(letter.original_value_bytes(), static_cast<int64_t>(huge_bytes));
      EXPECT_EQ(letter.original_value().size(), 65536u) << "limits.dead_letter_value_bytes";
      EXPECT_EQ(letter.original_value(), records[1].second.substr(0, 65536));
      EXPECT_GE(letter.offset(), 0) << "the position names the whole record";
    }
  }
  EXPECT_EQ(reasons[v1::DEAD_LETTER_REASON_OVERSIZED], 1);
  EXPECT_EQ(reasons[v1::DEAD_LETTER_REASON_INVALID_FRAME], 2) << "the two implausible times";
  ExpectExactlyTheReference(topics);
}

}  // namespace
}  // namespace vigil::testing
