#include "pipeline/report/kafka_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "pipeline/replay/telemetry_source.h"
#include "pipeline/report/report_command.h"
#include "vigil/v1/aggregate.pb.h"
#include "vigil/v1/alert.pb.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil::report {
namespace {

// The values of `patient_id`'s records on `topic`, in partition order (one patient's records
// share a partition, so this is the order they were produced in), read committed from the
// beginning to each partition's end as of now.
std::vector<std::string> ReadPatientRecords(const KafkaReportOptions& options,
                                            const std::string& topic,
                                            const std::string& patient_id) {
  kafka::Properties props = options.properties;
  props["group.id"] =
      fmt::format("vigil-report-{}", std::chrono::steady_clock::now().time_since_epoch().count());
  props["enable.auto.commit"] = "false";
  props["isolation.level"] = "read_committed";
  props["enable.partition.eof"] = "true";
  kafka::Consumer consumer(props);
  const int partitions = kafka::PartitionCount(consumer.handle(), topic, std::chrono::seconds(30));
  consumer.AssignAllFromBeginning(topic, std::chrono::seconds(30));

  std::vector<std::string> values;
  consumer.ReadToEnd(partitions, options.idle, [&](const RdKafka::Message& m) {
    if (m.key() && *m.key() == patient_id && m.payload()) {
      values.emplace_back(static_cast<const char*>(m.payload()), m.len());
    }
  });
  consumer.Close();
  return values;
}

// The committed envelopes, replayed through the same path as a recording.
class EnvelopeSource : public replay::TelemetrySource {
 public:
  EnvelopeSource(std::vector<v1::TelemetryEnvelope> envelopes, std::string description)
      : envelopes_(std::move(envelopes)), description_(std::move(description)) {}
  bool Next(v1::TelemetryEnvelope& envelope) override {
    if (next_ == envelopes_.size()) return false;
    envelope = envelopes_[next_++];
    return true;
  }
  ops::TimeUs origin_us() const override {
    for (const auto& e : envelopes_) {
      if (e.frames_size() > 0) return e.frames(0).first_sample_time_us();
    }
    return 0;
  }
  std::string description() const override { return description_; }

 private:
  std::vector<v1::TelemetryEnvelope> envelopes_;
  std::string description_;
  size_t next_ = 0;
};

}  // namespace

ReportData CollectFromKafka(const std::string& patient_id,
                            std::shared_ptr<const analysis::AnalysisPlan> plan,
                            const KafkaReportOptions& options, KafkaReportStats* stats) {
  KafkaReportStats local;
  KafkaReportStats& st = stats ? *stats : local;

  std::vector<v1::TelemetryEnvelope> envelopes;
  for (const auto& value : ReadPatientRecords(options, options.telemetry_topic, patient_id)) {
    ++st.telemetry_records;
    v1::TelemetryEnvelope envelope;
    if (!envelope.ParseFromString(value) || envelope.patient_id() != patient_id) {
      ++st.undecodable_records;
      continue;
    }
    envelopes.push_back(std::move(envelope));
  }
  if (envelopes.empty()) {
    throw std::runtime_error(fmt::format(
        "patient {}: no committed telemetry on {} ({} records with this key, {} undecodable)",
        patient_id, options.telemetry_topic, st.telemetry_records, st.undecodable_records));
  }
  EnvelopeSource source(std::move(envelopes), fmt::format("{} records of {}", st.telemetry_records,
                                                          options.telemetry_topic));
  ReportData data = CollectOffline(source, plan, patient_id);
  for (const auto& a : data.alerts) {
    if (a.state() == v1::ALERT_STATE_RAISED) ++st.reanalysed_raised_alerts;
  }

  // What was published replaces what the re-analysis computed.
  // Deduplicated as the schema says: (alert_id, revision) for alerts; the latest record of a
  // (window kind, window start) for aggregates (a re-run of the pipeline under another group
  // publishes the same windows again).
  std::vector<v1::Alert> alerts;
  std::set<std::pair<std::string, uint32_t>> seen_alerts;
  for (const auto& value : ReadPatientRecords(options, options.alerts_topic, patient_id)) {
    v1::Alert alert;
    if (alert.ParseFromString(value) &&
        seen_alerts.emplace(alert.alert_id(), alert.revision()).second) {
      alerts.push_back(std::move(alert));
    }
  }
  std::map<std::pair<int, int64_t>, v1::Aggregate> windows;
  for (const auto& value : ReadPatientRecords(options, options.aggregates_topic, patient_id)) {
    v1::Aggregate g;
    if (!g.ParseFromString(value)) continue;
    const std::pair<int, int64_t> key{static_cast<int>(g.window()), g.window_start_us()};
    windows[key] = std::move(g);
  }
  std::vector<v1::Aggregate> minutes, days, rolling;
  for (auto& [key, g] : windows) {
    ++st.published_aggregates;
    switch (g.window()) {
      case v1::WINDOW_KIND_MINUTE:
        minutes.push_back(std::move(g));
        break;
      case v1::WINDOW_KIND_THERAPY_DAY:
        days.push_back(std::move(g));
        break;
      case v1::WINDOW_KIND_ROLLING_30_DAYS:
        rolling.push_back(std::move(g));
        break;
      default:
        break;
    }
  }
  st.published_alerts = alerts.size();
  // Strips only for published alerts (ids are deterministic, so the re-analysis finds the same).
  std::set<std::string> published_ids;
  for (const auto& a : alerts) published_ids.insert(a.alert_id());
  std::erase_if(data.strips,
                [&](const EcgStrip& s) { return !published_ids.count(s.alert.alert_id()); });
  data.alerts = std::move(alerts);
  data.minutes = std::move(minutes);
  data.days = std::move(days);
  data.rolling = std::move(rolling);
  data.source = fmt::format(
      "alerts and aggregates as published on {} and {}; ECG strips, beats and episodes from "
      "re-analysing the {} committed telemetry records on {}",
      options.alerts_topic, options.aggregates_topic, st.telemetry_records - st.undecodable_records,
      options.telemetry_topic);
  return data;
}

}  // namespace vigil::report
