#include "pipeline/service/service_commands.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "pipeline/config/service_config.h"
#include "pipeline/service/stream_service.h"
#include "pipeline/service/tail.h"

namespace vigil::service {
namespace {

// logfmt-style lines on stderr: one event per line, machine-parsable, never a patient id.
void SetUpLogging(const std::string& level) {
  spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%fZ level=%l thread=%t msg=\"%v\"",
                      spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(level));
}

int RunService(const std::string& config_file, bool print_config) {
  // First: a SIGTERM while the configuration loads (an orchestrator scaling down a pod that is
  // just starting) must stop the service cleanly, not kill it.
  InstallStopSignals();
  config::ServiceConfig config;
  try {
    config = config::LoadServiceConfig(config_file, config::ProcessEnvironment());
  } catch (const config::ConfigError& e) {
    std::cerr << "vigil run: " << e.what() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << config::DescribeConfig(config);
    return 0;
  }
  SetUpLogging(config.logging.level);
  try {
    StreamService service(std::move(config));
    const int code = service.Run();
    // Kafka is done (transaction committed, group left). Skip tearing down the HTTP servers:
    // civetweb's mg_stop waits out its 2 s poll twice, which would eat the 10 s stop budget.
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    std::_Exit(code);
  } catch (const config::ConfigError& e) {
    spdlog::critical("{}", e.what());
    std::cerr << "vigil run: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("start-up failed: {}", e.what());
    return 1;
  }
}

}  // namespace

void AddRunCommand(CLI::App& app) {
  struct Args {
    std::string config_file;
    bool print_config = false;
  };
  auto args = std::make_shared<Args>();
  auto* run = app.add_subcommand(
      "run",
      "Run the streaming service: one member of the consumer group (see deploy/local/vigil.yaml)");
  run->add_option("--config", args->config_file,
                  "YAML configuration; VIGIL_* environment variables override it");
  run->add_flag("--print-config", args->print_config,
                "Print every key, its environment variable and its value, then exit");
  run->callback([args] {
    const int code = RunService(args->config_file, args->print_config);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

void AddTailCommand(CLI::App& app) {
  struct Args {
    TailOptions options;
    std::string bootstrap = "localhost:9092";
  };
  auto args = std::make_shared<Args>();
  auto* tail = app.add_subcommand("tail", "Print a topic's committed records as JSON Lines");
  tail->add_option("topic", args->options.topic, "Topic, e.g. vigil.alerts.v1")->required();
  tail->add_option("--kafka", args->bootstrap, "Kafka bootstrap servers")->capture_default_str();
  tail->add_flag("--from-beginning", args->options.from_beginning, "Start at the oldest record");
  tail->add_option("--until-idle", args->options.until_idle_s,
                   "Exit after this many seconds without a record");
  tail->add_option("--type", args->options.type,
                   "Message type when the topic name does not tell it (telemetry, alert, "
                   "aggregate, dead-letter, state, patient-config)");
  tail->callback([args] {
    auto& stop = InstallStopSignals();
    args->options.properties["bootstrap.servers"] = args->bootstrap;
    try {
      Tail(args->options, std::cout, std::cerr, stop);
    } catch (const std::exception& e) {
      std::cerr << "vigil tail: " << e.what() << "\n";
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace vigil::service
