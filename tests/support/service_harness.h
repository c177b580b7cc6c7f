// Helpers for tests that run `vigil run` as a child process against the real test broker:
// private topics per test, the service process, producing synthetic telemetry, reading outputs
// back, the offline reference (the same PatientAnalysis without Kafka) and scraping /metrics.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/kafka/kafka_client.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil::testing {

// Topic names of one test (prefix-unique), created on the broker with `partitions` each
// (dead letters: 1).
struct TopicSet {
  std::string telemetry, alerts, aggregates, dead_letter, state, patient_config;
  int partitions = 4;
};
// `telemetry_config` is extra topic configuration of the telemetry topic (e.g. max.message.bytes).
TopicSet CreateTestTopics(const std::string& prefix, int partitions = 4,
                          const std::map<std::string, std::string>& telemetry_config = {});

// A `vigil run` child process. Its log goes to <dir>/<name>.log.
class ServiceProcess {
 public:
  // Writes the config (YAML text) and starts the process with `env` added to the environment.
  ServiceProcess(std::string name, const std::string& yaml,
                 std::map<std::string, std::string> env = {});
  ~ServiceProcess();  // SIGKILLs the process if still running
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  void Kill();  // SIGKILL and reap
  // SIGTERM; waits up to `timeout`. Returns the exit code (or -signal, or nullopt on timeout).
  std::optional<int> Terminate(std::chrono::milliseconds timeout,
                               std::chrono::milliseconds* took = nullptr);
  // Waits for exit by itself. Returns the exit code, nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Log() const;
  // Waits until the log contains `text` (true) or the process exited or `timeout` passed.
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout);
  const std::filesystem::path& log_path() const { return log_; }

 private:
  std::string name_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Runs `vigil <args>` to completion, capturing stdout+stderr. Returns the exit code.
int RunVigil(const std::vector<std::string>& args, std::string* output,
             const std::map<std::string, std::string>& env = {});

// The YAML of a service bound to `topics` with `group` and `instance`, fast intervals for tests.
std::string ServiceYaml(const TopicSet& topics, const std::string& group,
                        const std::string& instance, int metrics_port,
                        const std::string& extra = "");

// Produces envelopes keyed by patient id (idempotent producer), flushes.
// Deterministic synthetic telemetry (service::GenerateTelemetry) for `patients` patients over
// `seconds` of device time; every `drop_every`-th frame is left out (0 = none) to make gaps.
std::vector<v1::TelemetryEnvelope> SyntheticEnvelopes(const std::string& prefix, int patients,
                                                      double seconds, int drop_every);

void ProduceEnvelopes(const std::string& topic,
                      const std::vector<v1::TelemetryEnvelope>& envelopes);
// Produces raw key/value records; returns nothing, flushes.
// `properties` are added to the producer's (e.g. message.max.bytes for large records).
void ProduceRaw(const std::string& topic,
                const std::vector<std::pair<std::string, std::string>>& records,
                const kafka::Properties& properties = {});

// Every committed record of `topic` (read_committed, from the beginning) until `idle` passes.
std::vector<kafka::Record> ReadCommitted(
    const std::string& topic, std::chrono::milliseconds idle = std::chrono::milliseconds(1500));

// Waits until the group's committed offsets reach the end of every partition of `topic`.
// Returns false on timeout.
bool WaitForGroupCaughtUp(const std::string& group, const std::string& topic,
                          std::chrono::milliseconds timeout);

// Outputs per patient (serialized messages, in order) - the comparison unit of exactly-once.
struct PatientOutputs {
  std::map<std::string, std::vector<std::string>> alerts;
  std::map<std::string, std::vector<std::string>> aggregates;
  size_t total() const;
};
PatientOutputs OutputsFromTopics(const TopicSet& topics);
// The offline reference: the telemetry records as committed in Kafka (read back, so with their
// Kafka timestamps) through PatientAnalysis directly, per patient in offset order, with the
// device-offline check at each record's timestamp as the service does it. No Finish(): a
// stream never ends. Records the decoder rejects are skipped (they are dead letters).
PatientOutputs OfflineReference(const std::vector<kafka::Record>& telemetry,
                                const analysis::AnalysisConfig& config,
                                double device_offline_after_s);

// GET http://127.0.0.1:<port><path>; returns the HTTP status and fills `body`. 0 on connect
// failure.
int HttpGet(int port, const std::string& path, std::string* body = nullptr);
// Value of a metric line that starts with `series` (e.g. `vigil_events_total{event="records_in"}`).
double MetricValue(const std::string& metrics_text, const std::string& series);

// A free TCP port on localhost whose next port is free too (a service's metrics and health
// ports), below the kernel's ephemeral range so that no outgoing connection takes it meanwhile.
int FreePort();

}  // namespace vigil::testing
