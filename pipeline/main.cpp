// The vigil executable: one binary, one subcommand per job.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "pipeline/config/service_config.h"
#include "pipeline/doctor.h"
#include "pipeline/replay/replay_command.h"
#include "pipeline/report/report_command.h"
#include "pipeline/service/stream_service.h"
#include "pipeline/service/tail.h"
#include "pipeline/version.h"

namespace {

// logfmt-style lines on stderr: one event per line, machine-parsable, never a patient id.
void SetUpLogging(const std::string& level) {
  spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%fZ level=%l thread=%t msg=\"%v\"", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(level));
}

int RunService(const std::string& config_file, bool print_config) {
  vigil::config::ServiceConfig config;
  try {
    config = vigil::config::LoadServiceConfig(config_file, vigil::config::ProcessEnvironment());
  } catch (const vigil::config::ConfigError& e) {
    std::cerr << "vigil run: " << e.what() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << vigil::config::DescribeConfig(config);
    return 0;
  }
  SetUpLogging(config.logging.level);
  auto& stop = vigil::service::InstallStopSignals();
  (void)stop;
  try {
    vigil::service::StreamService service(std::move(config));
    const int code = service.Run();
    // Kafka is done (transaction committed, group left). Skip tearing down the HTTP servers:
    // civetweb's mg_stop waits out its 2 s poll twice, which would eat the 10 s stop budget.
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    std::_Exit(code);
  } catch (const vigil::config::ConfigError& e) {
    spdlog::critical("{}", e.what());
    std::cerr << "vigil run: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("start-up failed: {}", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Vigil: streaming analysis of home-monitoring telemetry (ECG, ventilation, CO2, adherence) "
      "over Apache Kafka."};
  app.set_version_flag("--version", std::string("vigil ") + vigil::Version());
  app.require_subcommand(1);

  std::string bootstrap = "localhost:9092";
  auto* doctor = app.add_subcommand(
      "doctor", "Check that a Kafka cluster has the v1 topics and supports transactions");
  doctor->add_option("--kafka", bootstrap, "Kafka bootstrap servers")->capture_default_str();

  // The subcommands, one line each.
  vigil::replay::AddReplayCommand(app);
  vigil::report::AddReportCommand(app);

  std::string config_file;
  bool print_config = false;
  auto* run = app.add_subcommand(
      "run", "Run the streaming service: one member of the consumer group (see deploy/local/vigil.yaml)");
  run->add_option("--config", config_file, "YAML configuration; VIGIL_* environment variables override it");
  run->add_flag("--print-config", print_config,
                "Print every key, its environment variable and its value, then exit");

  vigil::service::TailOptions tail_options;
  std::string tail_bootstrap = "localhost:9092";
  auto* tail = app.add_subcommand("tail", "Print a topic's committed records as JSON Lines");
  tail->add_option("topic", tail_options.topic, "Topic, e.g. vigil.alerts.v1")->required();
  tail->add_option("--kafka", tail_bootstrap, "Kafka bootstrap servers")->capture_default_str();
  tail->add_flag("--from-beginning", tail_options.from_beginning, "Start at the oldest record");
  tail->add_option("--until-idle", tail_options.until_idle_s,
                   "Exit after this many seconds without a record");
  tail->add_option("--type", tail_options.type,
                   "Message type when the topic name does not tell it (telemetry, alert, aggregate, "
                   "dead-letter, state, patient-config)");

  CLI11_PARSE(app, argc, argv);
  if (*doctor) return vigil::RunDoctor(bootstrap, std::cout);
  if (*run) return RunService(config_file, print_config);
  if (*tail) {
    auto& stop = vigil::service::InstallStopSignals();
    tail_options.properties["bootstrap.servers"] = tail_bootstrap;
    try {
      vigil::service::Tail(tail_options, std::cout, std::cerr, stop);
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "vigil tail: " << e.what() << "\n";
      return 1;
    }
  }
  return 0;
}
