// Offline replay of a ResMed SD card: card -> telemetry (io::CardTelemetry) -> the respiratory
// and adherence operators -> JSON Lines, with no broker. One line per episode
// ({"type":"episode","rhythm":"APNEA"|"HYPOPNEA"|...}), one per therapy day in exactly the form
//   {"type":"therapy_day","date":"2023-08-21","usage_min":254.0,"sessions":4,"ahi":0.2,
//    "leak_p50_lpm":..,"leak_p95_lpm":..,"rr_median":..,"vt_median_ml":..,"mv_median_lpm":..}
// (values without data are null), and one adherence aggregate per therapy day.
//
// This drives the operators directly, in the order a live device's frames would arrive, and
// tells them of gaps between recordings (OnGap) and of device time (AdvanceTo); when the lead's
// PatientAnalysis replay lands in main, the card source plugs into it (CardTelemetry gives the
// frames and device events) and this file keeps only the therapy-day join.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/stream_operator.h"
#include "operators/io/resmed_card.h"

namespace vigil::replay {

struct CardReplayOptions {
  std::string time_zone = "Europe/Copenhagen";       // device clock zone and therapy-day zone
  std::map<std::string, ops::Parameters> parameters;  // per operator name, keys without prefix
  double chunk_s = 60;
};

// The therapy-day line: adherence day joined with the respiratory events inside it.
struct TherapyDayLine {
  std::string date;
  ops::TimeUs start_us = 0, end_us = 0;
  double usage_min = 0;
  int sessions = 0;
  int apneas = 0, hypopneas = 0;
  std::optional<double> ahi;  // per hour of usage; unset without usage
  std::optional<double> leak_p50_lpm, leak_p95_lpm, large_leak_min;
  std::optional<double> rr_median, vt_median_ml, mv_median_lpm;
  size_t breaths = 0;
  // adherence rules on the history up to this day
  std::optional<double> adherence_score, compliance_30d, usage_mean_7_nights_h;
};

struct CardReplayResult {
  std::vector<TherapyDayLine> days;
  std::vector<ops::Episode> episodes;  // closed episodes (opened/closed pairs merged)
  size_t samples = 0;                  // samples fed to the operators
};

// Throws what the card reader and the operators' Make throw (bad file, bad parameter).
CardReplayResult ReplayCard(const io::ResmedCard& card, const CardReplayOptions& options);

void WriteJsonLines(const CardReplayResult& result, std::ostream& out);

// True when `path` looks like a ResMed card (a folder with STR.edf).
bool IsResmedCard(const std::filesystem::path& path);

// `vigil replay <card-dir> --out <file.jsonl>`: returns the process exit code; messages to err.
int RunCardReplay(const std::filesystem::path& card_dir, const std::filesystem::path& out_file,
                  const std::string& time_zone, std::ostream& err);

}  // namespace vigil::replay
