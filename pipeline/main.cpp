// The vigil executable: one binary, one subcommand per job.
#include <CLI/CLI.hpp>

#include <iostream>

#include "pipeline/doctor.h"
#include "pipeline/eval/card_compare.h"
#include "pipeline/replay/card_replay.h"
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

  std::string replay_input, replay_out, replay_tz = "Europe/Copenhagen";
  auto* replay = app.add_subcommand(
      "replay", "Replay a recording offline to JSON Lines (a ResMed SD card folder)");
  replay->add_option("input", replay_input, "ResMed card folder (with STR.edf)")->required();
  replay->add_option("--out", replay_out, "JSON Lines output file")->required();
  replay->add_option("--tz", replay_tz, "IANA zone of the device clock and the therapy days")
      ->capture_default_str();

  std::string eval_jsonl, eval_card, eval_tz = "Europe/Copenhagen";
  auto* eval_card_cmd = app.add_subcommand(
      "eval-card", "Compare a card replay with the card's own STR.edf summaries and EVE events");
  eval_card_cmd->add_option("replay", eval_jsonl, "JSON Lines from `vigil replay <card>`")->required();
  eval_card_cmd->add_option("--card", eval_card, "the ResMed card folder")->required();
  eval_card_cmd->add_option("--tz", eval_tz, "IANA zone of the device clock")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (*eval_card_cmd) {
    return vigil::eval::RunEvalCard(eval_jsonl, eval_card, eval_tz, std::cout, std::cerr);
  }
  if (*doctor) return vigil::RunDoctor(bootstrap, std::cout);
  if (*replay) {
    if (!vigil::replay::IsResmedCard(replay_input)) {
      std::cerr << "vigil replay: " << replay_input << " is not a ResMed card folder (no STR.edf)\n";
      return 2;
    }
    return vigil::replay::RunCardReplay(replay_input, replay_out, replay_tz, std::cerr);
  }
  return 0;
}
