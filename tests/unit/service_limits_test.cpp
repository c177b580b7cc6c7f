// The service's self-protection, without a broker: outputs fitted under the broker's message
// size limit (a message over it fails the transaction again on every retry, a crash loop that
// follows the partition), and the liveness watch behind /healthz.
#include <gtest/gtest.h>

#include "operators/core/snapshot.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/service/hibernation.h"
#include "pipeline/service/liveness.h"
#include "pipeline/service/output_limits.h"
#include "pipeline/service/synthetic_telemetry.h"
#include "pipeline/service/telemetry_decoder.h"

namespace {

using namespace vigil;
using namespace std::chrono_literals;

v1::OperatorState State(const std::string& name, size_t bytes) {
  v1::OperatorState s;
  s.set_operator_name(name);
  s.set_stream("dev/ECG/1");
  s.set_state(std::string(bytes, 'x'));
  return s;
}

TEST(FitSnapshot, DropsTheLargestStatesFirstAndKeepsTheAlertManager) {
  v1::PatientStateSnapshot snap;
  snap.set_patient_id("p");
  *snap.add_operators() = State("_alert_manager", 5000);
  *snap.add_operators() = State("ecg.arrhythmia", 300000);
  *snap.add_operators() = State("resp.breaths", 2000);
  *snap.add_operators() = State("_streams", 200000);
  const auto fit = service::FitSnapshot(snap, 150000);
  EXPECT_TRUE(fit.fits);
  EXPECT_GT(fit.original_bytes, 500000u);
  EXPECT_LE(fit.bytes, 150000u);
  EXPECT_EQ(fit.bytes, snap.ByteSizeLong());
  EXPECT_EQ(fit.dropped,
            (std::vector<std::string>{"ecg.arrhythmia/dev/ECG/1", "_streams/dev/ECG/1"}));
  ASSERT_EQ(snap.operators_size(), 2);
  EXPECT_EQ(snap.operators(0).operator_name(), "_alert_manager");
  EXPECT_EQ(snap.operators(1).operator_name(), "resp.breaths");
}

TEST(FitSnapshot, SmallSnapshotIsUntouchedAndAnImpossibleOneIsRefused) {
  v1::PatientStateSnapshot snap;
  *snap.add_operators() = State("ecg.qrs", 100);
  auto fit = service::FitSnapshot(snap, 4096);
  EXPECT_TRUE(fit.fits);
  EXPECT_TRUE(fit.dropped.empty());
  EXPECT_EQ(snap.operators_size(), 1);

  snap.set_patient_id(std::string(5000, 'p'));  // nothing left to drop makes it fit
  fit = service::FitSnapshot(snap, 4096);
  EXPECT_FALSE(fit.fits);
  EXPECT_EQ(snap.operators_size(), 0);
}

TEST(DeadLetterValue, LargeValuesTravelAsAPrefixWithTheirSize) {
  v1::DeadLetter letter;
  service::SetOriginalValue(letter, std::string(5 << 20, 'v'), 65536);
  EXPECT_TRUE(letter.original_value_truncated());
  EXPECT_EQ(letter.original_value_bytes(), 5 << 20);
  EXPECT_EQ(letter.original_value().size(), 65536u);
  EXPECT_LT(letter.ByteSizeLong(), 70000u);

  service::SetOriginalValue(letter, "small", 65536);
  EXPECT_FALSE(letter.original_value_truncated());
  EXPECT_EQ(letter.original_value(), "small");
  EXPECT_EQ(letter.original_value_bytes(), 5);
}

TEST(DeadLetterKey, HugeKeysTravelAsAPrefixAndAreRefusedAsPatientIds) {
  v1::DeadLetter letter;
  service::SetOriginalKey(letter, std::string(700000, 'k'), 65536);
  EXPECT_TRUE(letter.original_key_truncated());
  EXPECT_EQ(letter.original_key_bytes(), 700000);
  EXPECT_EQ(letter.original_key().size(), 65536u);
  const std::string huge(service::kMaxPatientIdBytes + 1, 'p');
  v1::TelemetryEnvelope envelope;
  envelope.set_patient_id(huge);
  const auto decoded = service::DecodeTelemetry(huge, envelope.SerializeAsString(), {});
  ASSERT_TRUE(std::holds_alternative<service::Rejection>(decoded));
  EXPECT_EQ(std::get<service::Rejection>(decoded).reason, v1::DEAD_LETTER_REASON_OVERSIZED);
}

TEST(LivenessWatch, ALaneStuckOnOneRecordOrAStoppedLoopIsReported) {
  using Clock = service::LivenessWatch::Clock;
  const auto t0 = Clock::now();
  service::LivenessWatch watch(2, 1000ms);
  EXPECT_EQ(watch.Stalled(t0 + 3600s), "") << "start-up is not judged: the loop has not turned yet";
  watch.Turn(t0);
  EXPECT_EQ(watch.Stalled(t0 + 500ms), "");
  watch.Begin(1, t0);
  EXPECT_EQ(watch.Stalled(t0 + 900ms), "") << "busy, within the deadline";
  const std::string stuck = watch.Stalled(t0 + 1500ms);
  EXPECT_NE(stuck.find("lane 1"), std::string::npos) << stuck;
  watch.End(1);
  watch.Turn(t0 + 1400ms);
  EXPECT_EQ(watch.Stalled(t0 + 1500ms), "") << "the lane finished its record";
  const std::string loop = watch.Stalled(t0 + 2500ms);
  EXPECT_NE(loop.find("run loop"), std::string::npos) << loop;
  // Busy lanes that keep finishing records are alive however long they are busy in all.
  for (int i = 0; i < 10; ++i) {
    watch.Begin(0, t0 + 1400ms + i * 500ms);
    watch.End(0);
  }
  watch.Turn(t0 + 6000ms);
  EXPECT_EQ(watch.Stalled(t0 + 6500ms), "");
}

// Everything a patient produces, fed the synthetic telemetry of `patient` in [from, to) envelopes.
std::vector<std::string> Feed(analysis::PatientAnalysis& p,
                              const std::vector<v1::TelemetryEnvelope>& all, size_t from,
                              size_t to) {
  std::vector<std::string> outputs;
  analysis::Outputs out;
  for (size_t i = from; i < to; ++i) {
    auto decoded = service::DecodeTelemetry(all[i].patient_id(), all[i].SerializeAsString(), {});
    for (const auto& f : std::get<service::DecodedRecord>(decoded).frames) {
      analysis::FrameView view = service::ViewOf(f);
      p.OnFrame(view, out);
    }
  }
  for (const auto& a : out.alerts) outputs.push_back(a.SerializeAsString());
  for (const auto& a : out.aggregates) outputs.push_back(a.SerializeAsString());
  return outputs;
}

TEST(Hibernation, AWokenPatientContinuesExactlyAsOneThatNeverSlept) {
  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  const auto plan = analysis::AnalysisPlan::Make(config);
  service::SyntheticOptions options;
  options.patients = 1;
  options.seconds = 240;
  std::vector<v1::TelemetryEnvelope> envelopes;
  service::GenerateTelemetry(options,
                             [&](const v1::TelemetryEnvelope& e) { envelopes.push_back(e); });
  const std::string id = envelopes[0].patient_id();
  analysis::PatientAnalysis awake(id, plan);
  auto expected = Feed(awake, envelopes, 0, 120);
  const auto expected_rest = Feed(awake, envelopes, 120, envelopes.size());

  analysis::PatientAnalysis before(id, plan);
  const auto first = Feed(before, envelopes, 0, 120);
  EXPECT_EQ(first, expected);
  const std::string packed = service::Hibernate(before);
  EXPECT_LT(packed.size(), before.Snapshot().ByteSizeLong() / 2) << "deflated";
  EXPECT_LT(packed.size(), 64u * 1024) << "issue 16: <= 64 KB per idle patient";
  auto woken = service::Wake(id, plan, packed);
  EXPECT_EQ(Feed(*woken, envelopes, 120, envelopes.size()), expected_rest);
  auto woken_state = woken->Snapshot();
  auto awake_state = awake.Snapshot();
  woken_state.clear_snapshot_wall_time_us();  // the only wall-clock field
  awake_state.clear_snapshot_wall_time_us();
  EXPECT_TRUE(woken_state.SerializeAsString() == awake_state.SerializeAsString())
      << "the woken patient's state equals the never-slept one's";
  EXPECT_THROW(service::Wake(id, plan, packed.substr(0, packed.size() / 2)), ops::SnapshotError);
}

}  // namespace
