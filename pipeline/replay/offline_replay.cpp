#include "pipeline/replay/offline_replay.h"

#include <fmt/format.h>

#include "pipeline/analysis/frame_decoder.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/output/json_lines.h"
#include "pipeline/service/record_feed.h"

namespace vigil::replay {

analysis::AnalysisConfig DefaultAnalysisConfig() {
  analysis::AnalysisConfig config;
  for (const auto& entry : analysis::Operators()) {
    config.operators.push_back({std::string(entry.name), {}});
  }
  return config;
}

std::vector<analysis::Rejection> FeedEnvelope(const v1::TelemetryEnvelope& envelope,
                                              analysis::PatientAnalysis& patient,
                                              analysis::Outputs& outputs,
                                              const FrameCallback& on_frame) {
  // The service's limits, except the frames per record: a recording read from disk is no
  // hostile input, and a card cut into large envelopes has many frames where NaN splits series.
  static const service::DecodeLimits kLimits = [] {
    service::DecodeLimits limits;
    limits.max_frames_per_record = 1u << 20;
    return limits;
  }();
  const auto decoded = service::DecodeEnvelope(envelope, kLimits);
  if (const auto* rejection = std::get_if<analysis::Rejection>(&decoded)) return {*rejection};
  const auto& record = std::get<service::DecodedRecord>(decoded);
  if (on_frame) {
    for (const auto& f : record.frames) on_frame(f);
  }
  return service::FeedRecord(record, 0, patient, outputs);
}

ReplayStats ReplayToJsonLines(TelemetrySource& source,
                              std::shared_ptr<const analysis::AnalysisPlan> plan,
                              const std::string& patient_id, const ReplayOutputOptions& options,
                              std::ostream& out, std::ostream& diagnostics) {
  ReplayStats stats;
  analysis::PatientAnalysis patient(patient_id, std::move(plan));
  analysis::Outputs outputs;
  const ops::TimeUs origin = source.origin_us();

  auto write = [&] {
    for (const auto& event : outputs.events) {
      if (const auto* beat = std::get_if<ops::Beat>(&event)) {
        ++stats.beats;
        if (options.beats) out << output::BeatLine(*beat, origin) << '\n';
      } else if (const auto* episode = std::get_if<ops::Episode>(&event)) {
        if (episode->phase != ops::Episode::Phase::kClosed) continue;
        ++stats.episodes;
        if (options.episodes) out << output::EpisodeLine(*episode, origin) << '\n';
      } else if (const auto* m = std::get_if<ops::Measurement>(&event)) {
        if (options.measurements) out << output::MeasurementLine(*m, origin) << '\n';
      }
    }
    for (const auto& alert : outputs.alerts) {
      ++stats.alerts;
      if (options.alerts) out << output::AlertLine(alert) << '\n';
    }
    for (const auto& aggregate : outputs.aggregates) {
      ++stats.aggregates;
      if (!options.aggregates) continue;
      out << output::AggregateLine(aggregate) << '\n';
      if (aggregate.window() == v1::WINDOW_KIND_THERAPY_DAY) {
        out << output::TherapyDayLine(aggregate) << '\n';
      }
    }
    outputs.clear();
  };

  v1::TelemetryEnvelope envelope;
  while (source.Next(envelope)) {
    ++stats.envelopes;
    for (const auto& rejection :
         FeedEnvelope(envelope, patient, outputs, [&](const service::DecodedFrame& f) {
           ++stats.frames;
           stats.samples += f.values.size();
         })) {
      ++stats.rejected_frames;
      diagnostics << fmt::format("rejected envelope {} {}: {}\n", stats.envelopes - 1,
                                 v1::DeadLetterReason_Name(rejection.reason), rejection.detail);
    }
    write();
  }
  patient.Finish(outputs);
  write();
  out.flush();
  return stats;
}

}  // namespace vigil::replay
