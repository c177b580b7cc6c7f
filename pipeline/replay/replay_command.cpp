#include "pipeline/replay/replay_command.h"

#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "pipeline/output/json_lines.h"
#include "pipeline/replay/offline_replay.h"
#include "pipeline/service/kafka_replay.h"
#include "pipeline/service/stream_service.h"

namespace vigil::replay {
namespace {

struct ReplayArgs {
  std::string recording;
  std::string out;
  std::string patient = "replay-patient";
  std::vector<std::string> overrides;  // "operator.key=value"
  bool no_beats = false;
  bool no_aggregates = false;
  bool measurements = false;
  std::string af_model;  // a model file replacing models/ecg_af.model
  double frame_s = 1.0;
  std::string time_zone = "Europe/Copenhagen";  // device clock and therapy days (ResMed cards)
  std::string kafka;  // bootstrap servers: produce to Kafka instead of analysing offline
  std::string topic = "vigil.telemetry.v1";
  std::string speed = "1";  // device seconds per wall second, or "max"
};

std::map<std::string, double> ParseOverrides(const std::vector<std::string>& items) {
  std::map<std::string, double> out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) {
      throw CLI::ValidationError("--set", item + ": expected operator.key=value");
    }
    try {
      size_t used = 0;
      const double v = std::stod(item.substr(eq + 1), &used);
      if (used != item.size() - eq - 1) throw std::invalid_argument("trailing characters");
      out[item.substr(0, eq)] = v;
    } catch (const std::exception&) {
      throw CLI::ValidationError("--set", item + ": value is not a number");
    }
  }
  return out;
}

int RunOffline(const ReplayArgs& args) {
  SourceOptions options;
  options.patient_id = args.patient;
  options.frame_s = args.frame_s;
  options.device_time_zone = args.time_zone;
  auto source = OpenRecording(args.recording, options);
  auto config = DefaultAnalysisConfig();
  config.default_time_zone = args.time_zone;
  config.af_model = args.af_model;
  auto plan = analysis::AnalysisPlan::Make(config);
  plan = plan->WithOverrides(ParseOverrides(args.overrides));
  ReplayOutputOptions what;
  what.beats = !args.no_beats;
  what.aggregates = !args.no_aggregates;
  what.measurements = args.measurements;
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (!args.out.empty() && args.out != "-") {
    file.open(args.out);
    if (!file) throw std::runtime_error(args.out + ": cannot open for writing");
    out = &file;
  }
  *out << output::ReplayLine(source->origin_us(), args.patient) << '\n';
  const auto stats = ReplayToJsonLines(*source, plan, args.patient, what, *out, std::cerr);
  if (!*out) throw std::runtime_error(args.out + ": write failed");
  std::cerr << fmt::format(
      "{}: {} frames, {} samples, {} rejected; {} beats, {} episodes, {} alerts, {} aggregates\n",
      source->description(), stats.frames, stats.samples, stats.rejected_frames, stats.beats,
      stats.episodes, stats.alerts, stats.aggregates);
  return 0;
}

int RunToKafka(const ReplayArgs& args) {
  SourceOptions options;
  options.patient_id = args.patient;
  options.frame_s = args.frame_s;
  options.device_time_zone = args.time_zone;
  auto source = OpenRecording(args.recording, options);
  service::KafkaReplayOptions kafka;
  kafka.topic = args.topic;
  kafka.properties["bootstrap.servers"] = args.kafka;
  if (args.speed == "max") {
    kafka.speed = 0;
  } else {
    try {
      kafka.speed = std::stod(args.speed);
    } catch (const std::exception&) {
      kafka.speed = -1;
    }
    if (!(kafka.speed > 0))
      throw CLI::ValidationError("--speed", args.speed + ": a number > 0 or max");
  }
  const auto stats = service::ReplayToKafka(*source, kafka, service::InstallStopSignals());
  std::cerr << fmt::format("{}: {} envelopes ({} bytes) to {} in {:.1f} s\n", source->description(),
                           stats.envelopes, stats.bytes, args.topic, stats.seconds);
  return 0;
}

}  // namespace

void AddReplayCommand(CLI::App& app) {
  auto args = std::make_shared<ReplayArgs>();
  auto* cmd = app.add_subcommand(
      "replay",
      "Run a recording (WFDB record path without extension, or a ResMed SD card folder) through "
      "the analysis, offline to JSON Lines");
  cmd->add_option("recording", args->recording,
                  "Recording: WFDB record path without extension, or ResMed card folder")
      ->required();
  cmd->add_option("--out", args->out, "Output JSON Lines file ('-' = stdout)")
      ->capture_default_str();
  cmd->add_option("--patient", args->patient, "Pseudonymous patient id for the output")
      ->capture_default_str();
  cmd->add_option("--set", args->overrides,
                  "Per-patient parameter override, operator.key=value (repeatable)");
  cmd->add_option("--frame-seconds", args->frame_s, "Seconds of signal per telemetry frame")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 60.0));
  cmd->add_option("--tz", args->time_zone,
                  "IANA zone of a ResMed card's device clock and of the therapy days")
      ->capture_default_str();
  cmd->add_option(
      "--kafka", args->kafka,
      "Produce the recording as telemetry to this Kafka cluster instead of analysing it");
  cmd->add_option("--topic", args->topic, "With --kafka: the telemetry topic")
      ->capture_default_str();
  cmd->add_option("--speed", args->speed, "With --kafka: device seconds per wall second, or max")
      ->capture_default_str();
  cmd->add_flag("--no-beats", args->no_beats, "Do not write beat lines");
  cmd->add_flag("--no-aggregates", args->no_aggregates, "Do not write aggregate lines");
  cmd->add_flag("--measurements", args->measurements,
                "Write the operators' measurement events (with ecg.arrhythmia.af_feature_trace=1: "
                "the AF model's inputs per beat window, which training/train_af.sh reads)");
  cmd->add_option("--af-model", args->af_model,
                  "AF model file to serve instead of the built-in models/ecg_af.model");
  cmd->callback([args] {
    try {
      const int rc = args->kafka.empty() ? RunOffline(*args) : RunToKafka(*args);
      if (rc != 0) throw CLI::RuntimeError(rc);
    } catch (const CLI::Error&) {
      throw;
    } catch (const std::exception& e) {
      std::cerr << "vigil replay: " << e.what() << "\n";
      throw CLI::RuntimeError(2);
    }
  });
}

}  // namespace vigil::replay
