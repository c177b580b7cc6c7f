// Human-facing console output for the demo and for operators at a terminal: one line per alert
// record, colour-coded by priority (IEC 60601-1-8 colours: red high, yellow medium, cyan low),
// with the one-line explanation; and the end-of-demo summary that scores what Vigil raised
// against what the simulator injected.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "vigil/v1/aggregate.pb.h"
#include "vigil/v1/alert.pb.h"

namespace vigil::console {

// "17:20:05  HIGH    sim-00003  Ventricular tachycardia  RAISED   <summary>"; `colour` adds
// ANSI colours. `time_zone` formats the device time.
std::string FormatAlert(const v1::Alert& alert, bool colour, const std::string& time_zone);

// One injected event from `vigil simulate --truth` (JSON Lines).
struct TruthRecord {
  std::string patient;
  std::string kind;  // AFIB, VT, VF, PAUSE, ASYS, BRADY, TACHY, PVC, NOISE, LEADOFF, APNEA, ...
  int64_t start_us = 0;
  int64_t end_us = 0;
};

// Reads a truth file. Throws std::runtime_error naming the file and line on malformed input.
std::vector<TruthRecord> ReadTruth(const std::string& path);

// How one injected event fared.
struct Detection {
  TruthRecord truth;
  enum class Outcome { kDetected, kMissed, kCorrectlySilent, kNotAlarmed } outcome{};
  std::string how;  // e.g. "alert 3f2a... raised 12 s after onset", "no alert (rate-limited?)"
};

// Matches every truth event to the alerts and aggregates of its patient (see the .cpp for the
// rule per kind).
std::vector<Detection> ScoreAgainstTruth(const std::vector<TruthRecord>& truth,
                                         const std::vector<v1::Alert>& alerts,
                                         const std::vector<v1::Aggregate>& aggregates);

// The per-patient table and the detection list.
void PrintSummary(const std::vector<v1::Alert>& alerts,
                  const std::vector<v1::Aggregate>& aggregates,
                  const std::vector<Detection>& detections, bool colour, std::ostream& out);

// `vigil watch` and `vigil summary`.
void AddConsoleCommands(CLI::App& app);

}  // namespace vigil::console
