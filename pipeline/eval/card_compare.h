// `vigil eval-card`: compares a card replay (JSON Lines from `vigil replay <card-dir>`) with the
// card's own figures: STR.edf per therapy day (usage, sessions, AHI, leak p50/p95, median
// respiratory rate, tidal volume and minute ventilation) and the device-scored EVE events
// (apneas and hypopneas; arousals and other annotations are not respiratory events), matched
// one-to-one when their starts are within `match_s` (10 s). ResMed writes hypopneas without a
// duration: their stamp is the event's end (EVE stamps every event at its end), so those are
// matched by end time against the end of Vigil's episode.
//
// A "day with data" is a therapy day with usage in STR.edf and a DATALOG/<yyyymmdd> folder: the
// other STR days summarise nights whose recordings are not on the card.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "operators/core/time.h"
#include "operators/io/resmed_card.h"

namespace vigil::eval {

// The subset of a replay's lines the comparison reads (pipeline/output/json_lines.h).
struct ReplayDay {
  std::string date;
  double usage_min = 0;
  int sessions = 0;
  std::optional<double> ahi, leak_p50_lpm, leak_p95_lpm, rr_median, vt_median_ml, mv_median_lpm;
};
struct ReplayEpisode {
  std::string rhythm;
  // Absolute times ("start_us") or seconds from the replay's origin ("start", as `vigil replay`
  // writes them; for a card the origin is its first telemetry item, the first session start).
  std::optional<ops::TimeUs> start_us, end_us;
  double start_s = 0, end_s = 0;
};
struct ReplayLines {
  std::vector<ReplayDay> days;
  std::vector<ReplayEpisode> episodes;
};

// Throws std::runtime_error naming the line number on a malformed line.
ReplayLines ParseReplayLines(std::istream& in);

struct DayComparison {
  std::string date;
  bool with_data = false;  // STR usage and DATALOG folder
  const io::StrDay* device = nullptr;
  const ReplayDay* vigil = nullptr;
  int eve_events = 0, vigil_events = 0, matched = 0;
};

struct CardComparison {
  std::vector<DayComparison> days;
  int eve_events = 0, vigil_events = 0, matched = 0;
  // over days with data (denominator `days_with_data`)
  int days_with_data = 0;
  int usage_within_5min = 0, ahi_within_1 = 0, rr_within_1 = 0, vt_within_10pct = 0;
};

// `lines` and `card` must outlive the result (it points into them).
CardComparison CompareCard(const ReplayLines& lines, const io::ResmedCard& card,
                           double match_s = 10);

void PrintComparison(const CardComparison& c, std::ostream& out);

// Adds `vigil eval-card <replay.jsonl> --card <dir> [--tz zone]` to `app`.
void AddEvalCardCommand(CLI::App& app);

int RunEvalCard(const std::filesystem::path& jsonl, const std::filesystem::path& card_dir,
                const std::string& time_zone, std::ostream& out, std::ostream& err);

}  // namespace vigil::eval
