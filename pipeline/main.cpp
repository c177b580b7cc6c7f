// The vigil executable: one binary, one subcommand per job.
#include <CLI/CLI.hpp>
#include <iostream>

#include "pipeline/analysis/operator_docs.h"
#include "pipeline/console/alert_console.h"
#include "pipeline/doctor.h"
#include "pipeline/eval/card_compare.h"
#include "pipeline/eval/eval_command.h"
#include "pipeline/replay/replay_command.h"
#include "pipeline/report/report_command.h"
#include "pipeline/service/service_commands.h"
#include "pipeline/simulate/simulate_command.h"
#include "pipeline/version.h"

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
  vigil::console::AddConsoleCommands(app);
  vigil::report::AddReportCommand(app);
  vigil::eval::AddEvalCommand(app);
  vigil::simulate::AddSimulateCommand(app);
  vigil::eval::AddEvalCardCommand(app);
  vigil::service::AddRunCommand(app);
  vigil::service::AddTailCommand(app);
  vigil::analysis::AddOperatorsCommand(app);

  CLI11_PARSE(app, argc, argv);
  if (*doctor) return vigil::RunDoctor(bootstrap, std::cout);
  return 0;
}
