// `vigil report`: a self-contained HTML report for one patient.
#pragma once

#include <CLI/CLI.hpp>

#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/replay/telemetry_source.h"
#include "pipeline/report/report_data.h"

namespace vigil::report {

// Runs `source` through the analysis (as the offline replay does) and keeps what the report
// shows, including the ECG around each arrhythmia alert. Throws for source I/O failures.
ReportData CollectOffline(replay::TelemetrySource& source,
                          std::shared_ptr<const analysis::AnalysisPlan> plan,
                          const std::string& patient_id);

void AddReportCommand(CLI::App& app);

}  // namespace vigil::report
