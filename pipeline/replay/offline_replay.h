// The offline replay: a recording through the same PatientAnalysis the service runs, written as
// JSON Lines (see pipeline/output/json_lines.h). No broker involved.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <span>
#include <vector>

#include "pipeline/analysis/frame_decoder.h"
#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/replay/telemetry_source.h"
#include "pipeline/service/telemetry_decoder.h"

namespace vigil::replay {

struct ReplayStats {
  uint64_t envelopes = 0;
  uint64_t frames = 0;
  uint64_t samples = 0;
  uint64_t rejected_frames = 0;  // would have been dead-lettered by the service
  uint64_t beats = 0;
  uint64_t episodes = 0;
  uint64_t alerts = 0;
  uint64_t aggregates = 0;
};

// Which lines to write. Beats and minute aggregates are many; evaluation needs beats.
struct ReplayOutputOptions {
  bool beats = true;
  bool episodes = true;
  bool alerts = true;
  bool aggregates = true;
  bool measurements = false;  // operators' measurement events (e.g. the AF model's inputs)
};

// Runs `source` through a PatientAnalysis built from `plan` and writes the lines to `out`.
// Frames the service would dead-letter are reported on `diagnostics` with their reason and
// skipped. Throws only for I/O failures of the source.
ReplayStats ReplayToJsonLines(TelemetrySource& source,
                              std::shared_ptr<const analysis::AnalysisPlan> plan,
                              const std::string& patient_id, const ReplayOutputOptions& options,
                              std::ostream& out, std::ostream& diagnostics);

// Feeds one envelope to `patient` exactly as the service does: decoded by
// service::DecodeEnvelope (one bad frame rejects the envelope), then service::FeedRecord
// (device events first, then the frames). `on_frame` (optional) sees each decoded frame before
// it is analysed. Returns what the service would dead-letter: the envelope, or the items the
// analysis refused (duplicates, frames older than the reordering tolerance, ...).
using FrameCallback = std::function<void(const service::DecodedFrame&)>;
std::vector<analysis::Rejection> FeedEnvelope(const v1::TelemetryEnvelope& envelope,
                                              analysis::PatientAnalysis& patient,
                                              analysis::Outputs& outputs,
                                              const FrameCallback& on_frame = {});

// An AnalysisConfig that runs every registered operator with its default parameters.
analysis::AnalysisConfig DefaultAnalysisConfig();

}  // namespace vigil::replay
