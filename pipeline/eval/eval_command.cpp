#include "pipeline/eval/eval_command.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>

#include "pipeline/eval/alarm_eval.h"
#include "pipeline/eval/episode_eval.h"
#include "pipeline/eval/evaluation.h"

namespace vigil::eval {
namespace {

struct EvalArgs {
  std::string replay;
  std::string record;
  std::string replays_dir;
  std::string records_dir;
  std::string json_out;
  double window_s = 0.15;
  bool episodes = false;   // score episode lines (rhythms) instead of beats
  std::string cinc;        // CinC 2017 REFERENCE.csv (with --episodes)
  std::string alarms_dir;  // replays of CinC 2015 records (--alarms)
};

int RunAlarms(const EvalArgs& a) {
  const auto ev = EvaluateAlarms(a.alarms_dir, a.records_dir);
  PrintAlarmEvaluation(ev, std::cout);
  if (!a.json_out.empty()) {
    std::ofstream out(a.json_out);
    out << AlarmEvaluationJson(ev);
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", a.json_out));
  }
  return 0;
}

int RunEpisodes(const EvalArgs& a) {
  const auto ev = EvaluateEpisodes(a.replays_dir, a.records_dir, a.cinc);
  PrintEpisodeEvaluation(ev, std::cout);
  if (!a.json_out.empty()) {
    std::ofstream out(a.json_out);
    out << EpisodeEvaluationJson(ev);
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", a.json_out));
  }
  return 0;
}

int Run(const EvalArgs& a) {
  namespace fs = std::filesystem;
  if (a.episodes) return RunEpisodes(a);
  if (!a.alarms_dir.empty()) return RunAlarms(a);
  BeatScoringOptions options;
  options.match_window_s = a.window_s;
  EvaluationReport report;
  std::vector<std::pair<fs::path, fs::path>> jobs;  // replay, record
  if (!a.replays_dir.empty()) {
    for (const auto& entry : fs::directory_iterator(a.replays_dir)) {
      if (entry.path().extension() != ".jsonl") continue;
      jobs.emplace_back(entry.path(), fs::path(a.records_dir) / entry.path().stem());
    }
    std::sort(jobs.begin(), jobs.end());
    if (jobs.empty()) throw std::runtime_error(fmt::format("no .jsonl files in {}", a.replays_dir));
  } else {
    jobs.emplace_back(a.replay, a.record);
  }
  for (const auto& [replay, record] : jobs) {
    AddRecord(report, EvaluateRecord(replay, record, options));
  }
  PrintReport(report, std::cout);
  if (!a.json_out.empty()) {
    std::ofstream out(a.json_out);
    out << ReportJson(report);
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", a.json_out));
  }
  return 0;
}

}  // namespace

void AddEvalCommand(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "Score a replay's beats against reference annotations (ANSI/AAMI EC57, bxb)");
  auto* replay = cmd->add_option("replay", args->replay, "Replay output (JSON Lines)");
  auto* record =
      cmd->add_option("--record", args->record, "Reference WFDB record, path without extension");
  auto* replays = cmd->add_option("--replays", args->replays_dir,
                                  "Folder of <record>.jsonl replay outputs (batch form)");
  auto* records = cmd->add_option("--records", args->records_dir,
                                  "Folder of the reference records (batch form)");
  cmd->add_option("--json", args->json_out, "Also write the scores as JSON to this file");
  auto* episodes = cmd->add_flag(
      "--episodes", args->episodes,
      "Score rhythm episodes (AF, VF/VFL, VT: EC57/epicmp episode and duration Se/+P, onset "
      "delay) instead of beats (batch form)");
  cmd->add_option("--cinc", args->cinc,
                  "CinC 2017 REFERENCE.csv: score AF versus rest per record and count VT/VF "
                  "episodes per label (with --episodes)")
      ->needs(episodes);
  episodes->needs(replays);
  auto* alarms = cmd->add_option(
      "--alarms", args->alarms_dir,
      "Folder of <record>.jsonl replays of PhysioNet/CinC 2015 records: score the bedside "
      "alarms against --records <dir>/REFERENCE.csv (TP/FP/FN/TN, TPR, TNR, challenge score)");
  alarms->needs(records);
  alarms->excludes(replays);
  alarms->excludes(replay);
  alarms->excludes(episodes);
  cmd->add_option("--window", args->window_s, "Match window in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1.0));
  replay->needs(record);
  record->needs(replay);
  replays->needs(records);
  replays->excludes(replay);
  cmd->callback([args, cmd] {
    if (args->replay.empty() && args->replays_dir.empty() && args->alarms_dir.empty()) {
      throw CLI::ValidationError("eval",
                                 "give <replay.jsonl> --record <path>, --replays <dir> --records "
                                 "<dir> or --alarms <dir> --records <dir>");
    }
    int rc = 2;
    try {
      rc = Run(*args);
    } catch (const std::exception& e) {
      std::cerr << "vigil eval: " << e.what() << "\n";
    }
    if (rc != 0) throw CLI::RuntimeError(rc);
    (void)cmd;
  });
}

}  // namespace vigil::eval
