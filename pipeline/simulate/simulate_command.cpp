#include "pipeline/simulate/simulate_command.h"

#include <date/date.h>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "pipeline/kafka/kafka_client.h"
#include "pipeline/output/json_lines.h"
#include "pipeline/replay/offline_replay.h"
#include "pipeline/simulate/simulated_telemetry.h"
#include "pipeline/topics.h"

namespace vigil::simulate {
namespace {

struct SimulateArgs {
  uint32_t patients = 0;
  uint32_t first_patient = 0;
  std::string kafka;
  std::string topic = std::string(topics::kTelemetry);
  std::string out;
  bool envelopes = false;
  std::string speed = "1";
  uint64_t seed = 1;
  double duration_s = 0;  // 0 = until interrupted
  std::string truth;
  std::string start;
  double event_rate = 1;
  int frame_s = 1;
  std::vector<std::string> overrides;  // "operator.key=value", offline analysis only
};

std::atomic<bool> g_stop{false};
extern "C" void OnSignal(int) {
  g_stop = true;
}

ops::TimeUs ParseStart(const std::string& text) {
  if (text.empty()) return sim::SimulationOptions{}.start_us;
  if (text == "now") {
    const auto now = std::chrono::system_clock::now();
    return std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() *
           ops::kMicrosPerSecond;
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z) != 7 ||
      z != 'Z' ||
      !date::year_month_day{date::year{y}, date::month(static_cast<unsigned>(mo)),
                            date::day(static_cast<unsigned>(d))}
           .ok() ||
      h > 23 || mi > 59 || s > 59 || h < 0 || mi < 0 || s < 0) {
    throw CLI::ValidationError("--start", text + ": expected YYYY-MM-DDTHH:MM:SSZ or 'now'");
  }
  const date::sys_days day{date::year{y} / date::month(static_cast<unsigned>(mo)) /
                           date::day(static_cast<unsigned>(d))};
  const auto t = day + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{s};
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count() *
         ops::kMicrosPerSecond;
}

// 0 = as fast as possible.
double ParseSpeed(const std::string& text) {
  if (text == "max") return 0;
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && v > 0 && v <= 1e6) return v;
  } catch (const std::exception&) {
  }
  throw CLI::ValidationError("--speed", text + ": expected a factor > 0 or 'max'");
}

class TruthWriter {
 public:
  TruthWriter(const std::string& path, ops::TimeUs origin) : origin_(origin) {
    if (path.empty()) return;
    file_.open(path);
    if (!file_) throw std::runtime_error(path + ": cannot open for writing");
    path_ = path;
  }
  void Write(const std::string& patient, std::vector<sim::TruthEvent>& events) {
    if (path_.empty()) {
      events.clear();
      return;
    }
    for (const auto& e : events) file_ << sim::TruthLine(patient, e, origin_) << '\n';
    events.clear();
  }
  void Close() {
    if (path_.empty()) return;
    file_.flush();
    if (!file_) throw std::runtime_error(path_ + ": write failed");
  }

 private:
  std::ofstream file_;
  std::string path_;
  ops::TimeUs origin_;
};

CohortOptions MakeCohortOptions(const SimulateArgs& args) {
  CohortOptions options;
  options.patients = args.patients;
  options.first_index = args.first_patient;
  options.block_seconds = args.frame_s;
  options.simulation.seed = args.seed;
  options.simulation.start_us = ParseStart(args.start);
  options.simulation.event_rate = args.event_rate;
  if (args.duration_s > 0) {
    options.simulation.end_us =
        options.simulation.start_us + ops::FromSeconds(std::floor(args.duration_s));
  }
  return options;
}

std::map<std::string, double> ParseOverrides(const std::vector<std::string>& items) {
  std::map<std::string, double> out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    size_t used = 0;
    double value = 0;
    try {
      if (eq != std::string::npos) value = std::stod(item.substr(eq + 1), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (eq == std::string::npos || used == 0 || used != item.size() - eq - 1) {
      throw CLI::ValidationError("--set", item + ": expected operator.key=<number>");
    }
    out[item.substr(0, eq)] = value;
  }
  return out;
}

// Offline: every patient through the same analysis as `vigil replay`, lines tagged by patient.
int RunOffline(const SimulateArgs& args) {
  if (args.duration_s <= 0) throw CLI::ValidationError("--out", "needs --duration");
  const auto options = MakeCohortOptions(args);
  auto plan = analysis::AnalysisPlan::Make(replay::DefaultAnalysisConfig())
                  ->WithOverrides(ParseOverrides(args.overrides));
  std::ofstream file(args.out);
  if (!file) throw std::runtime_error(args.out + ": cannot open for writing");
  TruthWriter truth(args.truth, options.simulation.start_us);
  replay::ReplayStats total;
  for (uint32_t i = 0; i < args.patients; ++i) {
    const auto profile = sim::DrawProfile(args.seed, args.first_patient + i);
    std::vector<sim::TruthEvent> events;
    auto source = MakePatientSource(profile, options.simulation, &events, args.frame_s);
    std::ostringstream lines;
    const auto stats =
        replay::ReplayToJsonLines(*source, plan, profile.patient_id, {}, lines, std::cerr);
    std::istringstream in(lines.str());
    for (std::string line; std::getline(in, line);) {
      if (line.size() < 2 || line[0] != '{') continue;
      file << "{\"patient\":\"" << profile.patient_id << "\"," << line.substr(1) << '\n';
    }
    truth.Write(profile.patient_id, events);
    total.envelopes += stats.envelopes;
    total.samples += stats.samples;
    total.episodes += stats.episodes;
    total.alerts += stats.alerts;
  }
  file.flush();
  if (!file) throw std::runtime_error(args.out + ": write failed");
  truth.Close();
  std::cerr << fmt::format(
      "vigil simulate: {} patients, {} envelopes, {} samples; {} episodes, "
      "{} alerts -> {}\n",
      args.patients, total.envelopes, total.samples, total.episodes, total.alerts, args.out);
  return 0;
}

// Streaming: envelopes to Kafka or as JSON Lines, paced by the wall clock unless --speed max.
int RunStream(const SimulateArgs& args) {
  const auto options = MakeCohortOptions(args);
  const double speed = ParseSpeed(args.speed);
  SimulatedCohort cohort(options);
  TruthWriter truth(args.truth, options.simulation.start_us);

  std::unique_ptr<kafka::Producer> producer;
  std::ofstream file;
  std::ostream* json = nullptr;
  if (!args.kafka.empty()) {
    producer =
        std::make_unique<kafka::Producer>(kafka::Properties{{"bootstrap.servers", args.kafka},
                                                            {"client.id", "vigil-simulate"},
                                                            {"enable.idempotence", "true"},
                                                            {"compression.type", "lz4"},
                                                            {"linger.ms", "20"}});
  } else {
    json = &std::cout;
    if (!args.out.empty() && args.out != "-") {
      file.open(args.out);
      if (!file) throw std::runtime_error(args.out + ": cannot open for writing");
      json = &file;
    }
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  using Clock = std::chrono::steady_clock;
  const auto wall0 = Clock::now();
  auto last_report = wall0;
  uint64_t records = 0, bytes = 0;
  v1::TelemetryEnvelope envelope;
  std::vector<sim::TruthEvent> events;
  std::string value;
  while (!cohort.finished() && !g_stop) {
    const ops::TimeUs block_start = cohort.now_us();
    if (speed > 0) {
      // Send a block once its device time has passed on the scaled wall clock.
      const double due_s = ops::ToSeconds(block_start - options.simulation.start_us +
                                          args.frame_s * ops::kMicrosPerSecond) /
                           speed;
      const auto due =
          wall0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(due_s));
      while (Clock::now() < due && !g_stop) {
        if (producer) producer->Poll(std::chrono::milliseconds(0));
        std::this_thread::sleep_until(std::min(due, Clock::now() + std::chrono::milliseconds(100)));
      }
    }
    for (uint32_t i = 0; i < cohort.size(); ++i) {
      const bool any = cohort.NextEnvelope(i, envelope, events);
      truth.Write(cohort.profile(i).patient_id, events);
      if (!any) continue;
      ++records;
      if (producer) {
        envelope.SerializeToString(&value);
        bytes += value.size();
        producer->Produce(args.topic, envelope.patient_id(), value);
      } else {
        *json << output::ToJson(envelope) << '\n';
      }
    }
    if (producer) producer->Poll(std::chrono::milliseconds(0));
    if (Clock::now() - last_report > std::chrono::seconds(10)) {
      last_report = Clock::now();
      std::cerr << fmt::format("vigil simulate: device time {} s, {} records, {:.1f} MB\n",
                               ops::ToSeconds(cohort.now_us() - options.simulation.start_us),
                               records, static_cast<double>(bytes) / 1e6);
    }
  }
  if (producer) producer->Flush(std::chrono::seconds(60));
  if (json != nullptr) {
    json->flush();
    if (!*json) throw std::runtime_error("envelope output: write failed");
  }
  truth.Close();
  const double wall_s = std::chrono::duration<double>(Clock::now() - wall0).count();
  std::cerr << fmt::format(
      "vigil simulate: {} patients, {} s of device time, {} records ({:.1f} MB) in {:.1f} s{}\n",
      cohort.size(), ops::ToSeconds(cohort.now_us() - options.simulation.start_us), records,
      static_cast<double>(bytes) / 1e6, wall_s, g_stop ? " (interrupted)" : "");
  return 0;
}

}  // namespace

void AddSimulateCommand(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  auto* cmd = app.add_subcommand(
      "simulate",
      "Stream a synthetic, seeded cohort (ECG, NIV flow/pressure, tcCO2, adherence history) to "
      "Kafka, or analyse it offline; writes the injected events as ground truth");
  cmd->add_option("--patients", args->patients, "Number of patients")
      ->required()
      ->check(CLI::Range(1u, 1000000u));
  cmd->add_option("--first-patient", args->first_patient,
                  "Index of the first patient (shards of one cohort across processes)")
      ->capture_default_str();
  auto* kafka = cmd->add_option("--kafka", args->kafka, "Kafka bootstrap servers: produce there");
  auto* out = cmd->add_option(
      "--out", args->out,
      "Without --envelopes: run the offline analysis and write its JSON Lines here; with "
      "--envelopes: write the envelopes here ('-' = stdout)");
  auto* envelopes = cmd->add_flag("--envelopes", args->envelopes,
                                  "Write the telemetry envelopes as JSON Lines (no Kafka)");
  kafka->excludes(out)->excludes(envelopes);
  cmd->add_option("--topic", args->topic, "Telemetry topic")->capture_default_str();
  cmd->add_option("--speed", args->speed, "Device seconds per wall-clock second, or 'max'")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Cohort seed: same seed, same cohort, same bytes")
      ->capture_default_str();
  cmd->add_option("--duration", args->duration_s,
                  "Seconds of device time (whole seconds; default: until Ctrl-C)")
      ->check(CLI::Range(1.0, 1e9));
  cmd->add_option("--truth", args->truth, "Write the ground truth (JSON Lines) here");
  cmd->add_option("--start", args->start,
                  "Device time of the first sample, YYYY-MM-DDTHH:MM:SSZ or 'now' (default "
                  "2026-01-05T21:00:00Z, bedtime in Copenhagen)");
  cmd->add_option("--event-rate", args->event_rate,
                  "Multiply every event rate (demos: 10-50 to see events within minutes)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  cmd->add_option("--set", args->overrides,
                  "With --out: analysis parameter override, operator.key=value (repeatable), "
                  "e.g. adherence.usage.session_source=0 for sessions from pressure only")
      ->excludes(kafka)
      ->excludes(envelopes);
  cmd->add_option("--frame-seconds", args->frame_s, "Seconds of signal per envelope")
      ->capture_default_str()
      ->check(CLI::Range(1, 60));
  cmd->callback([args] {
    try {
      int rc = 0;
      if (!args->kafka.empty() || args->envelopes) {
        rc = RunStream(*args);
      } else if (!args->out.empty()) {
        rc = RunOffline(*args);
      } else {
        throw CLI::ValidationError("simulate", "give --kafka, --out or --envelopes");
      }
      if (rc != 0) throw CLI::RuntimeError(rc);
    } catch (const CLI::Error&) {
      throw;
    } catch (const std::exception& e) {
      std::cerr << "vigil simulate: " << e.what() << "\n";
      throw CLI::RuntimeError(2);
    }
  });
}

}  // namespace vigil::simulate
