#include "pipeline/service/record_feed.h"

#include <fmt/format.h>

#include <exception>

namespace vigil::service {

std::vector<Rejection> FeedRecord(const DecodedRecord& record, ops::TimeUs arrival_us,
                                  analysis::PatientAnalysis& patient, analysis::Outputs& out) {
  std::vector<Rejection> rejected;
  for (size_t i = 0; i < record.events.size(); ++i) {
    const int item = static_cast<int>(record.frames.size() + i);
    try {
      if (patient.OnDeviceEvent(record.events[i].device_id, record.events[i].view, out) ==
          analysis::FrameOutcome::kRejected) {
        rejected.push_back({v1::DEAD_LETTER_REASON_INVALID_FRAME,
                            fmt::format("events[{}].{}", i, patient.last_rejection()), item});
      }
    } catch (const std::exception& e) {
      rejected.push_back({v1::DEAD_LETTER_REASON_OPERATOR_FAILURE, e.what(), item});
    }
  }
  for (size_t i = 0; i < record.frames.size(); ++i) {
    const auto& f = record.frames[i];
    const int item = static_cast<int>(i);
    analysis::FrameView view = ViewOf(f, arrival_us);
    analysis::FrameOutcome outcome;
    try {
      outcome = patient.OnFrame(view, out);
    } catch (const std::exception& e) {
      rejected.push_back({v1::DEAD_LETTER_REASON_OPERATOR_FAILURE, e.what(), item});
      continue;
    }
    if (outcome == analysis::FrameOutcome::kDuplicate) {
      rejected.push_back({v1::DEAD_LETTER_REASON_DUPLICATE,
                          fmt::format("frames[{}].sequence = {}: already processed", i, f.sequence),
                          item});
    } else if (outcome == analysis::FrameOutcome::kTooLate) {
      rejected.push_back(
          {v1::DEAD_LETTER_REASON_TOO_LATE,
           fmt::format("frames[{}].first_sample_time_us = {}: older than the reorder tolerance", i,
                       f.first_sample_us),
           item});
    } else if (outcome == analysis::FrameOutcome::kRejected) {
      // A time that cannot be placed on the patient's clock (far future, or no date at all).
      rejected.push_back({v1::DEAD_LETTER_REASON_INVALID_FRAME,
                          fmt::format("frames[{}].{}", i, patient.last_rejection()), item});
    }
  }
  return rejected;
}

}  // namespace vigil::service
