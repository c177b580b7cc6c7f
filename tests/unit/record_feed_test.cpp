// The service (DecodeTelemetry + FeedRecord) and the offline replay (replay::FeedEnvelope) feed
// a record the same way: the same outputs, the same rejections, the same texts. They used to
// differ in order (events first or last), in the unit dead-lettered (frame or record) and in the
// TOO_LATE text.
#include "pipeline/service/record_feed.h"

#include <gtest/gtest.h>

#include "pipeline/replay/offline_replay.h"
#include "support/service_harness.h"
#include "vigil/v1/telemetry.pb.h"

namespace vigil::testing {
namespace {

struct Fed {
  std::vector<std::string> outputs;
  std::vector<std::string> rejections;
};

Fed ThroughTheService(const std::vector<v1::TelemetryEnvelope>& envelopes) {
  auto plan = analysis::AnalysisPlan::Make(replay::DefaultAnalysisConfig());
  analysis::PatientAnalysis patient(envelopes.front().patient_id(), plan);
  Fed fed;
  analysis::Outputs out;
  for (const auto& e : envelopes) {
    const auto decoded = service::DecodeTelemetry(e.patient_id(), e.SerializeAsString(), {});
    if (const auto* r = std::get_if<analysis::Rejection>(&decoded)) {
      fed.rejections.push_back(v1::DeadLetterReason_Name(r->reason) + " " + r->detail);
      continue;
    }
    for (const auto& r :
         service::FeedRecord(std::get<service::DecodedRecord>(decoded), 0, patient, out)) {
      fed.rejections.push_back(v1::DeadLetterReason_Name(r.reason) + " " + r.detail);
    }
  }
  patient.Finish(out);
  for (const auto& a : out.alerts) fed.outputs.push_back(a.SerializeAsString());
  for (const auto& a : out.aggregates) fed.outputs.push_back(a.SerializeAsString());
  return fed;
}

Fed ThroughTheReplay(const std::vector<v1::TelemetryEnvelope>& envelopes) {
  auto plan = analysis::AnalysisPlan::Make(replay::DefaultAnalysisConfig());
  analysis::PatientAnalysis patient(envelopes.front().patient_id(), plan);
  Fed fed;
  analysis::Outputs out;
  for (const auto& e : envelopes) {
    for (const auto& r : replay::FeedEnvelope(e, patient, out)) {
      fed.rejections.push_back(v1::DeadLetterReason_Name(r.reason) + " " + r.detail);
    }
  }
  patient.Finish(out);
  for (const auto& a : out.alerts) fed.outputs.push_back(a.SerializeAsString());
  for (const auto& a : out.aggregates) fed.outputs.push_back(a.SerializeAsString());
  return fed;
}

TEST(RecordFeed, ServiceAndReplayFeedARecordAlike) {
  auto envelopes = SyntheticEnvelopes("feed", 1, 120, 0);
  ASSERT_GT(envelopes.size(), 20u);
  // A repeated record (duplicates), one with a corrupt frame among good ones, and a session
  // event riding with frames.
  envelopes.push_back(envelopes[5]);
  envelopes[10].mutable_frames(0)->set_sample_rate_hz(-1);
  auto* event = envelopes[12].add_events();
  event->set_device_id(envelopes[12].frames(0).device_id());
  event->set_time_us(envelopes[12].frames(0).first_sample_time_us());
  event->mutable_session()->set_action(v1::TherapySession::ACTION_START);
  const auto service = ThroughTheService(envelopes);
  const auto replay = ThroughTheReplay(envelopes);
  ASSERT_FALSE(service.outputs.empty());
  EXPECT_EQ(replay.outputs, service.outputs);
  EXPECT_EQ(replay.rejections, service.rejections);
  ASSERT_GE(service.rejections.size(), 2u);  // the corrupt record and the duplicates
}

}  // namespace
}  // namespace vigil::testing
