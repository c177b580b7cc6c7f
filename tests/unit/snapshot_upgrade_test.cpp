// Snapshots of the previous release restore (tests/data/golden/README.md): an upgrade keeps
// every patient's ECG state instead of starting it afresh.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <numbers>
#include <vector>

#include "operators/core/snapshot.h"
#include "operators/ecg/ecg_monitor.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/service/synthetic_telemetry.h"
#include "pipeline/service/telemetry_decoder.h"
#include "support/test_support.h"

namespace {

using namespace vigil;

std::string Golden(const std::string& name) {
  const auto path = vigil::testing::SourceDir() / "tests/data/golden" / name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The generator's signal (make_ecg_arrhythmia_snapshot.cpp.txt), from `from_s` on.
std::vector<float> Ecg(double from_s, double to_s) {
  const double fs = 250;
  std::vector<float> x(static_cast<size_t>((to_s - from_s) * fs));
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = from_s + static_cast<double>(i) / fs;
    double v = 0.05 * std::sin(2 * std::numbers::pi * 0.3 * t);
    for (double b = 0.6; b < to_s; b += 0.8) {
      if (std::fabs(t - b) < 0.4) {
        v += 1.2 * std::exp(-0.5 * std::pow((t - b) / 0.012, 2)) +
             0.25 * std::exp(-0.5 * std::pow((t - b - 0.25) / 0.05, 2));
      }
    }
    x[i] = static_cast<float>(v);
  }
  return x;
}

TEST(SnapshotUpgrade, PreviousEcgSnapshotRestoresAndTheRhythmGoesOn) {
  const auto op = ecg::EcgMonitor::Make(ops::Parameters{});
  auto state = op->MakeState();
  ASSERT_NO_THROW(state->Restore(Golden("ecg_arrhythmia_v5.snapshot")));
  ops::Events events;
  const auto x = Ecg(40, 60);
  for (size_t i = 0; i < x.size(); i += 250) {
    op->Process(*state, ops::Signal::kEcg,
                {ops::SampleTime(0, 250, static_cast<int64_t>(40 * 250 + i)), 250,
                 std::span<const float>(x).subspan(i, 250)},
                events);
  }
  std::vector<ops::Beat> beats;
  for (const auto& e : events) {
    if (const auto* b = std::get_if<ops::Beat>(&e)) beats.push_back(*b);
    if (const auto* p = std::get_if<ops::Episode>(&e)) {
      ADD_FAILURE() << "episode " << static_cast<int>(p->kind);
    }
  }
  ASSERT_GE(beats.size(), 20u);
  // The restored state knew the rhythm: no learning pause, RR and rate from the first beat on.
  EXPECT_NEAR(beats.front().rr_s, 0.8, 0.02);
  EXPECT_NEAR(beats.front().heart_rate_bpm, 75, 2);
  // And what it writes now restores too.
  auto again = op->MakeState();
  EXPECT_NO_THROW(again->Restore(state->Snapshot()));
}

}  // namespace

// Issue 16 item 5: a whole patient across one format step either way. The golden patient has an
// open DEVICE_OFFLINE alert; when its devices resume, the restored alert manager clears it and
// never raises it a second time - also when the snapshot comes from a newer release whose ECG
// state this one cannot read (a rollback), which then restarts the ECG alone.
namespace patient_upgrade {

using namespace vigil;

std::vector<v1::Alert> ResumeDevices(analysis::PatientAnalysis& p) {
  service::SyntheticOptions options;
  options.patients = 1;
  options.seconds = 150;  // the alert manager clears 60 s after the condition ends
  analysis::Outputs out;
  int index = 0;
  service::GenerateTelemetry(options, [&](const v1::TelemetryEnvelope& e) {
    if (index++ < 60) return;  // the golden patient has the first 60 s (one envelope per s)
    auto decoded = service::DecodeTelemetry(e.patient_id(), e.SerializeAsString(), {});
    for (const auto& f : std::get<service::DecodedRecord>(decoded).frames) {
      analysis::FrameView view = service::ViewOf(f, f.first_sample_us + 400'000'000);
      const auto outcome = p.OnFrame(view, out);
      EXPECT_EQ(outcome, analysis::FrameOutcome::kProcessed) << p.last_rejection();
    }
  });
  return out.alerts;
}

std::shared_ptr<const analysis::AnalysisPlan> DefaultPlan() {
  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  return analysis::AnalysisPlan::Make(config);
}

void ExpectClearedNotRaisedAgain(const std::vector<v1::Alert>& alerts) {
  int raised = 0, cleared = 0;
  for (const auto& a : alerts) {
    if (a.condition() != v1::CONDITION_DEVICE_OFFLINE) continue;
    raised += a.state() == v1::ALERT_STATE_RAISED;
    cleared += a.state() == v1::ALERT_STATE_CLEARED;
  }
  EXPECT_EQ(raised, 0) << "the open alert was raised a second time";
  EXPECT_GE(cleared, 1) << "the restored open alert is cleared when the devices resume";
}

v1::PatientStateSnapshot GoldenPatient() {
  v1::PatientStateSnapshot snap;
  EXPECT_TRUE(snap.ParseFromString(Golden("patient_format1.snapshot")));
  return snap;
}

TEST(SnapshotUpgrade, GoldenPatientOfFormat1RestoresWithItsOpenAlert) {
  analysis::PatientAnalysis p(service::SyntheticPatientId({}, 0), DefaultPlan());
  ASSERT_NO_THROW(p.Restore(GoldenPatient()));
  EXPECT_TRUE(p.restore_fallbacks().empty()) << p.restore_fallbacks().front();
  ExpectClearedNotRaisedAgain(ResumeDevices(p));
}

TEST(SnapshotUpgrade, NewerFormatWithAnUnreadableOperatorKeepsTheRest) {
  auto snap = GoldenPatient();
  snap.set_format_version(snap.format_version() + 1);  // the next release wrote it
  bool ecg = false;
  for (auto& os : *snap.mutable_operators()) {
    if (os.operator_name() == "ecg.arrhythmia") {
      os.set_state("an ECG state format this release does not know");
      ecg = true;
    }
  }
  ASSERT_TRUE(ecg) << "the golden patient has an ECG state";
  auto* future = snap.add_operators();  // a part a newer release added, unknown here
  future->set_operator_name("_future_part");
  future->set_state("?");
  analysis::PatientAnalysis p(service::SyntheticPatientId({}, 0), DefaultPlan());
  ASSERT_NO_THROW(p.Restore(snap));
  ASSERT_EQ(p.restore_fallbacks().size(), 1u);
  EXPECT_EQ(p.restore_fallbacks()[0].rfind("ecg.arrhythmia/", 0), 0u) << p.restore_fallbacks()[0];
  ExpectClearedNotRaisedAgain(ResumeDevices(p));
}

TEST(SnapshotUpgrade, APartOfANewerEnvelopeFormatRestartsAlone) {
  auto snap = GoldenPatient();
  for (auto& os : *snap.mutable_operators()) {
    if (os.operator_name() == "respiration.events") os.set_format_version(2);
  }
  analysis::PatientAnalysis p(service::SyntheticPatientId({}, 0), DefaultPlan());
  ASSERT_NO_THROW(p.Restore(snap));
  ASSERT_EQ(p.restore_fallbacks().size(), 1u);
  EXPECT_EQ(p.restore_fallbacks()[0].rfind("respiration.events/", 0), 0u)
      << p.restore_fallbacks()[0];
  snap.set_format_version(0);  // no version at all: not a snapshot of any release
  EXPECT_THROW(p.Restore(snap), ops::SnapshotError);
}

TEST(SnapshotUpgrade, FormatsTwoStepsAwayAreRefused) {
  auto snap = GoldenPatient();
  snap.set_format_version(snap.format_version() + 2);
  analysis::PatientAnalysis p(service::SyntheticPatientId({}, 0), DefaultPlan());
  EXPECT_THROW(p.Restore(snap), ops::SnapshotError);
}

}  // namespace patient_upgrade
