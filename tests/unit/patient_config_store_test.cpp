// vigil.patient-config.v1 records applied to the store, without Kafka: what is accepted,
// ignored, removed, and what is rejected with which dead-letter reason (the previous settings
// stay).
#include "pipeline/service/patient_config_store.h"

#include <gtest/gtest.h>

#include "pipeline/analysis/operator_registry.h"
#include "vigil/v1/patient_config.pb.h"

namespace vigil::service {
namespace {

using Kind = PatientConfigStore::Outcome::Kind;

std::shared_ptr<const analysis::AnalysisPlan> Defaults() {
  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  return analysis::AnalysisPlan::Make(config);
}

kafka::Record Config(const std::string& key, const std::string& patient, uint64_t version,
                     std::map<std::string, double> parameters, const std::string& zone = "") {
  v1::PatientConfig pc;
  pc.set_patient_id(patient);
  pc.set_version(version);
  pc.set_time_zone(zone);
  for (const auto& [k, v] : parameters) (*pc.mutable_parameters())[k] = v;
  kafka::Record r;
  r.key = key;
  r.value = pc.SerializeAsString();
  return r;
}

TEST(PatientConfigStore, NewerVersionsApplyOlderOnesAreIgnored) {
  PatientConfigStore store(Defaults());
  EXPECT_EQ(store.Version("p1"), 0u);
  auto o = store.Apply(Config("p1", "p1", 3, {{"ecg.arrhythmia.hr_low_bpm", 45}}));
  EXPECT_EQ(o.kind, Kind::kAccepted);
  EXPECT_EQ(o.overrides, 1u);
  ASSERT_TRUE(store.Get("p1").has_value());
  EXPECT_EQ(store.Version("p1"), 3u);
  EXPECT_EQ(store.Apply(Config("p1", "p1", 2, {})).kind, Kind::kIgnored);
  EXPECT_EQ(store.Version("p1"), 3u);
  // Version 0 always applies, and still differs from "no configuration".
  EXPECT_EQ(store.Apply(Config("p1", "p1", 0, {})).kind, Kind::kAccepted);
  EXPECT_EQ(store.Version("p1"), 4u);
}

TEST(PatientConfigStore, TombstoneRemovesTheConfiguration) {
  PatientConfigStore store(Defaults());
  store.Apply(Config("p1", "p1", 1, {}));
  kafka::Record tombstone;
  tombstone.key = "p1";
  EXPECT_EQ(store.Apply(tombstone).kind, Kind::kRemoved);
  EXPECT_FALSE(store.Get("p1").has_value());
}

TEST(PatientConfigStore, BadRecordsAreRejectedAndThePreviousSettingsStay) {
  PatientConfigStore store(Defaults());
  store.Apply(Config("p1", "p1", 1, {{"ecg.arrhythmia.hr_low_bpm", 45}}));
  const auto before = store.Get("p1")->plan;
  struct Case {
    kafka::Record record;
    v1::DeadLetterReason reason;
  };
  kafka::Record no_key = Config("p1", "p1", 5, {});
  no_key.key.reset();
  kafka::Record garbage;
  garbage.key = "p1";
  garbage.value = "\xff\xff not a config";
  const std::vector<Case> cases = {
      {no_key, v1::DEAD_LETTER_REASON_MISSING_PATIENT},
      {Config(std::string(300, 'x'), std::string(300, 'x'), 5, {}),
       v1::DEAD_LETTER_REASON_OVERSIZED},
      {garbage, v1::DEAD_LETTER_REASON_UNDECODABLE},
      {Config("p1", "p2", 5, {}), v1::DEAD_LETTER_REASON_KEY_MISMATCH},
      {Config("p1", "p1", 5, {{"ecg.arrhythmia.hr_low_bpm", 5}}),
       v1::DEAD_LETTER_REASON_OPERATOR_FAILURE},
      {Config("p1", "p1", 5, {{"ecg.arrhythmia.no_such_key", 1}}),
       v1::DEAD_LETTER_REASON_OPERATOR_FAILURE},
      {Config("p1", "p1", 5, {{"ecg.arrhythmia.hr_low_bpm", std::nan("")}}),
       v1::DEAD_LETTER_REASON_OPERATOR_FAILURE},
      {Config("p1", "p1", 5, {}, "Mars/Olympus"), v1::DEAD_LETTER_REASON_OPERATOR_FAILURE},
  };
  for (const auto& c : cases) {
    const auto o = store.Apply(c.record);
    ASSERT_EQ(o.kind, Kind::kRejected) << v1::DeadLetterReason_Name(c.reason);
    ASSERT_TRUE(o.rejection.has_value());
    EXPECT_EQ(o.rejection->reason, c.reason) << o.rejection->detail;
    EXPECT_FALSE(o.rejection->detail.empty());
  }
  EXPECT_EQ(store.Version("p1"), 1u);
  EXPECT_EQ(store.Get("p1")->plan, before);
  // The rejection names the parameter and the value.
  const auto o = store.Apply(Config("p1", "p1", 6, {{"ecg.arrhythmia.hr_low_bpm", 5}}));
  EXPECT_NE(o.rejection->detail.find("ecg.arrhythmia.hr_low_bpm = 5"), std::string::npos)
      << o.rejection->detail;
}

}  // namespace
}  // namespace vigil::service
