#include "pipeline/replay/offline_replay.h"

#include <fmt/format.h>

#include "pipeline/analysis/frame_decoder.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/output/json_lines.h"

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
  static const analysis::DecodeLimits kLimits;
  thread_local std::vector<float> values;
  std::vector<analysis::Rejection> rejected;
  for (int i = 0; i < envelope.events_size(); ++i) {
    const auto& e = envelope.events(i);
    auto view = analysis::DecodeDeviceEvent(e);
    if (view &&
        patient.OnDeviceEvent(e.device_id(), *view, outputs) == analysis::FrameOutcome::kRejected) {
      rejected.push_back({v1::DEAD_LETTER_REASON_INVALID_FRAME,
                          fmt::format("events[{}].{}", i, patient.last_rejection()),
                          envelope.frames_size() + i});
    }
  }
  for (int i = 0; i < envelope.frames_size(); ++i) {
    const auto& f = envelope.frames(i);
    if (auto rejection = analysis::DecodeFrame(f, i, kLimits, values)) {
      rejected.push_back(std::move(*rejection));
      continue;
    }
    if (on_frame) on_frame(f, values);
    analysis::FrameView view;
    view.device_id = f.device_id();
    view.signal = analysis::ToSignal(f.kind());
    view.lead = f.lead();
    view.sequence = f.sequence();
    view.first_sample_us = f.first_sample_time_us();
    view.sample_rate_hz = f.sample_rate_hz();
    view.values = values;
    const auto outcome = patient.OnFrame(view, outputs);
    if (outcome == analysis::FrameOutcome::kDuplicate) {
      rejected.push_back(
          {v1::DEAD_LETTER_REASON_DUPLICATE,
           fmt::format("frames[{}].sequence = {}: already processed", i, f.sequence()), i});
    } else if (outcome == analysis::FrameOutcome::kTooLate) {
      rejected.push_back({v1::DEAD_LETTER_REASON_TOO_LATE,
                          fmt::format("frames[{}].sequence = {}: older than the reorder tolerance",
                                      i, f.sequence()),
                          i});
    } else if (outcome == analysis::FrameOutcome::kRejected) {
      rejected.push_back({v1::DEAD_LETTER_REASON_INVALID_FRAME,
                          fmt::format("frames[{}].{}", i, patient.last_rejection()), i});
    }
  }
  return rejected;
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
    for (const auto& rejection : FeedEnvelope(
             envelope, patient, outputs, [&](const v1::SignalFrame&, std::span<const float> v) {
               ++stats.frames;
               stats.samples += v.size();
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
