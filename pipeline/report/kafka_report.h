// `vigil report --patient <id> --kafka <bootstrap>`: a patient's report from what the running
// service committed, without the original recording.
//
//   - alerts and aggregates are the records published on the alerts and aggregates topics (what
//     clinicians and dashboards received);
//   - ECG strips, the beats marked in them and the shaded episodes come from re-analysing the
//     patient's committed telemetry with the same operator chain (beats and closed episodes are
//     not published), so they are exactly what the service saw. A strip is drawn for each
//     published arrhythmia alert.
//
// The patient's records are found by key (the patient id) in every partition, read with
// read_committed from the beginning up to the end of each partition at the time of the call.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/kafka/kafka_client.h"
#include "pipeline/report/report_data.h"

namespace vigil::report {

struct KafkaReportOptions {
  kafka::Properties properties;  // bootstrap.servers and any security settings
  std::string telemetry_topic = "vigil.telemetry.v1";
  std::string alerts_topic = "vigil.alerts.v1";
  std::string aggregates_topic = "vigil.aggregates.v1";
  // Give up on a partition that neither delivers nor reports its end for this long.
  std::chrono::milliseconds idle{10000};
};

struct KafkaReportStats {
  size_t telemetry_records = 0;
  size_t undecodable_records = 0;  // skipped (the service dead-letters them)
  size_t published_alerts = 0;
  size_t published_aggregates = 0;
  size_t reanalysed_raised_alerts = 0;  // RAISED alerts of the re-analysis, to compare
};

// Throws std::runtime_error when the patient has no committed telemetry on the topic, and
// KafkaError when a topic cannot be read.
ReportData CollectFromKafka(const std::string& patient_id,
                            std::shared_ptr<const analysis::AnalysisPlan> plan,
                            const KafkaReportOptions& options, KafkaReportStats* stats = nullptr);

}  // namespace vigil::report
