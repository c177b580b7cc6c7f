// Regression cases of the libFuzzer targets (fuzz/, docs/fuzzing.md): each minimized input the
// fuzzers found (tests/data/fuzz/) goes through the same code path as its target and must now
// give the clean result - the documented error, or success within bounds. The two bugs that
// were fixed before the fuzzers existed (WFDB offset "16+-5", empty ResMed Date signal) are
// covered in their input formats too, so that the targets demonstrably reach them.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "operators/core/options.h"
#include "operators/core/snapshot.h"
#include "operators/ecg/ecg_signal_quality.h"
#include "operators/ecg/ventricular_fibrillation_detector.h"
#include "operators/io/edf_file.h"
#include "operators/io/resmed_card.h"
#include "operators/io/wfdb_record.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/service/telemetry_decoder.h"
#include "support/test_support.h"
#include "vigil/v1/patient_config.pb.h"
#include "vigil/v1/telemetry.pb.h"

namespace {

namespace fs = std::filesystem;
using namespace vigil;

// fuzz::kSeparator (fuzz/fuzz_support.h): parts of one fuzz input.
const std::string kSeparator("\xFE\xFESPLIT\xFE\xFE", 9);

std::string Input(const std::string& name) {
  const fs::path path = vigil::testing::SourceDir() / "tests/data/fuzz" / name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> Split(std::string data) {
  std::vector<std::string> parts;
  for (size_t at; (at = data.find(kSeparator)) != std::string::npos;) {
    parts.push_back(data.substr(0, at));
    data.erase(0, at + kSeparator.size());
  }
  parts.push_back(data);
  return parts;
}

std::shared_ptr<const analysis::AnalysisPlan> DefaultPlan() {
  analysis::AnalysisConfig config;
  for (const auto& e : analysis::Operators()) config.operators.push_back({std::string(e.name), {}});
  return analysis::AnalysisPlan::Make(config);
}

// fuzz_snapshot's operator path: selector byte, then one operator's state bytes.
void RestoreOperatorState(const std::string& input) {
  const auto plan = DefaultPlan();
  const auto ops = plan->operators();
  const auto& op = *ops[(static_cast<uint8_t>(input.at(0)) & 0x7f) % ops.size()];
  op.MakeState()->Restore(std::string_view(input).substr(1));
}

class FuzzRegression : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / vigil::testing::UniqueName("fuzz-regression");
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  fs::path dir_;
};

// fuzz_telemetry: two device events 570 years apart (both within kMaxPlausibleTimeUs) made the
// therapy-day loop close one day at a time: 208 000 days, 31 s and a flood of aggregates.
TEST_F(FuzzRegression, TelemetryTimeLeapClosesBoundedDays) {
  const auto plan = DefaultPlan();
  std::optional<analysis::PatientAnalysis> patient;
  analysis::Outputs out;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& value : Split(Input("telemetry_time_leap.bin"))) {
    v1::TelemetryEnvelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(value));
    auto decoded = service::DecodeTelemetry(envelope.patient_id(), value, {});
    auto* record = std::get_if<service::DecodedRecord>(&decoded);
    ASSERT_NE(record, nullptr);
    if (!patient) patient.emplace(record->patient_id, plan);
    for (const auto& e : record->events) patient->OnDeviceEvent(e.device_id, e.view, out);
    patient->CheckDevicesOnline(envelope.sent_time_us(), 300, out);
  }
  ASSERT_TRUE(patient.has_value());
  size_t days = 0;
  for (const auto& e : out.events) days += std::holds_alternative<ops::TherapyDay>(e);
  // The open day, then the days the 30 + 7 night adherence history keeps.
  EXPECT_GE(days, 1u);
  EXPECT_LE(days, 40u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // The state still round-trips.
  analysis::PatientAnalysis restored(patient->patient_id(), plan);
  EXPECT_NO_THROW(restored.Restore(patient->Snapshot()));
}

// fuzz_snapshot: an adherence.usage state whose newest time is far beyond its open day (a
// forged or corrupt snapshot) looped once per day in Finish; times no runtime can have written
// are now a SnapshotError.
TEST_F(FuzzRegression, SnapshotUsageTimeOutOfRangeIsSnapshotError) {
  const std::string input = Input("snapshot_usage_time_leap.bin");
  EXPECT_THROW(RestoreOperatorState(input), ops::SnapshotError);
}

// fuzz_snapshot: a patient snapshot whose respiration.events state held apnea and hypopnea
// counters near INT64_MAX; their sum overflowed in Finish. Counters and times no processing can
// have written now make that part a SnapshotError, so it restarts fresh and Finish is clean.
TEST_F(FuzzRegression, SnapshotRespiratoryCountersOutOfRangeRestartThatPart) {
  const std::string input = Input("snapshot_resp_counter_overflow.bin");
  ASSERT_LT(static_cast<uint8_t>(input.at(0)), 0x80) << "a whole-patient input of fuzz_snapshot";
  v1::PatientStateSnapshot snap;
  ASSERT_TRUE(snap.ParseFromString(input.substr(1)));
  analysis::PatientAnalysis patient(snap.patient_id(), DefaultPlan());
  try {
    patient.Restore(snap);
  } catch (const ops::SnapshotError&) {
    // refusing the whole snapshot is clean too
  }
  bool respiration_fell_back = false;
  for (const auto& part : patient.restore_fallbacks()) {
    respiration_fell_back |= part.rfind("respiration.events", 0) == 0;
  }
  EXPECT_TRUE(respiration_fell_back || patient.restore_fallbacks().empty());
  analysis::Outputs out;
  patient.Finish(out);  // overflowed here (UBSan) before
  for (const auto& e : out.events) {
    if (const auto* m = std::get_if<ops::Measurement>(&e); m && m->name == "ahi") {
      EXPECT_TRUE(std::isfinite(m->value) && m->value >= 0) << m->value;
    }
  }
}

// fuzz_snapshot: a patient snapshot whose time zone was not a zone ("Europe/Copdnhagen")
// restored, and the first therapy-day boundary threw std::runtime_error from the time-zone
// database in the middle of processing (here Finish; in the service every record of the
// patient). The zone is checked when it is restored: that part restarts with the default zone.
TEST_F(FuzzRegression, SnapshotWithAnUnknownTimeZoneRestartsThatPart) {
  const std::string input = Input("snapshot_unknown_time_zone.bin");
  ASSERT_LT(static_cast<uint8_t>(input.at(0)), 0x80) << "a whole-patient input of fuzz_snapshot";
  v1::PatientStateSnapshot snap;
  ASSERT_TRUE(snap.ParseFromString(input.substr(1)));
  analysis::PatientAnalysis patient(snap.patient_id(), DefaultPlan());
  patient.Restore(snap);
  bool streams_fell_back = false;
  for (const auto& part : patient.restore_fallbacks()) {
    streams_fell_back |= part.rfind("_streams", 0) == 0;
  }
  EXPECT_TRUE(streams_fell_back);
  analysis::Outputs out;
  EXPECT_NO_THROW(patient.Finish(out));
}

// fuzz_snapshot: an ecg.arrhythmia state with an RR interval of 5e244 s overflowed the QRS
// detector's search-back limit (double -> int64 conversion, undefined behaviour).
TEST_F(FuzzRegression, SnapshotQrsRrOutOfRangeIsSnapshotError) {
  const std::string input = Input("snapshot_qrs_rr_overflow.bin");
  EXPECT_THROW(RestoreOperatorState(input), ops::SnapshotError);
}

// fuzz_snapshot: a patient snapshot whose reorder buffer held a flow frame at 1e-246 Hz
// restored; processing the frame afterwards (Finish) overflowed respiration.breaths' sample
// period. The fuzzer's input was a 26 KB snapshot; this is its essence, in the `_streams` format
// of PatientAnalysis::Snapshot.
TEST_F(FuzzRegression, SnapshotPendingFrameWithImpossibleRateIsSnapshotError) {
  constexpr ops::TimeUs kT0 = 1'767'225'600'000'000;
  const auto streams = [&](double rate) {
    ops::SnapshotWriter w;
    w.PutString("Europe/Copenhagen");
    w.Put<uint64_t>(1);  // streams
    w.PutString("dev");
    w.Put<uint8_t>(static_cast<uint8_t>(ops::Signal::kFlow));
    w.Put<int32_t>(0);   // lead
    w.Put<uint8_t>(1);   // started
    w.Put<uint64_t>(1);  // last sequence
    w.Put<int64_t>(kT0 + ops::kMicrosPerSecond);
    w.Put<uint64_t>(1);  // one pending frame: sequence 3 (2 is missing)
    w.Put<uint64_t>(3);
    w.Put<int64_t>(kT0 + 2 * ops::kMicrosPerSecond);
    w.Put<double>(rate);
    const std::vector<float> values(25, 1.0f);
    w.PutSpan<float>(values);
    w.PutSpan<uint64_t>(std::vector<uint64_t>{});
    w.Put<uint64_t>(0);  // devices
    return w.Take();
  };
  const auto snapshot = [&](double rate) {
    v1::PatientStateSnapshot snap;
    snap.set_patient_id("p");
    snap.set_format_version(1);
    snap.set_watermark_us(kT0 + ops::kMicrosPerSecond);
    auto* os = snap.add_operators();
    os->set_operator_name("_streams");
    os->set_format_version(1);
    os->set_state(streams(rate));
    return snap;
  };
  const auto plan = DefaultPlan();
  analysis::Outputs out;
  {
    // Refused: either the whole snapshot (SnapshotError) or its `_streams` part alone, which
    // then starts fresh. Either way the impossible frame never reaches an operator.
    analysis::PatientAnalysis patient("p", plan);
    try {
      patient.Restore(snapshot(3.33401e-246));
    } catch (const ops::SnapshotError&) {
    }
    EXPECT_EQ(patient.Snapshot().streams_size(), 0);
    patient.Finish(out);
  }
  analysis::PatientAnalysis patient("p", plan);  // the same frame at 25 Hz restores and runs
  ASSERT_NO_THROW(patient.Restore(snapshot(25)));
  EXPECT_EQ(patient.Snapshot().streams_size(), 1);
  patient.Finish(out);
}

// fuzz_snapshot: patient snapshots whose ecg.arrhythmia state gave the VF detector a sample
// rate of 2.9e253 Hz, or a NaN in its window, restored; the next gap resized the detector's window
// by it (double -> size_t overflow). The fuzzer's input was a 28 KB snapshot; this is its essence
// at the detector's own state, and the same for the signal-quality state, which sizes its blocks
// the same way.
TEST_F(FuzzRegression, SnapshotEcgStateWithImpossibleRateIsSnapshotError) {
  const auto save = [](auto state, double rate) {
    state.sample_rate_hz = rate;
    ops::SnapshotWriter w;
    state.Save(w);
    return w.Take();
  };
  for (double rate : {2.86389e253, -250.0, std::nan("")}) {
    const std::string vf = save(ecg::VentricularFibrillationDetector::State{}, rate);
    ops::SnapshotReader vf_reader(vf);
    ecg::VentricularFibrillationDetector::State vf_state;
    EXPECT_THROW(vf_state.Load(vf_reader), ops::SnapshotError) << rate;
    const std::string quality = save(ecg::EcgSignalQuality::State{}, rate);
    ops::SnapshotReader quality_reader(quality);
    ecg::EcgSignalQuality::State quality_state;
    EXPECT_THROW(quality_state.Load(quality_reader), ops::SnapshotError) << rate;
  }
  // A VF window that holds a NaN (OrderStatistic converted it to int: undefined behaviour; the
  // fuzzer's 31 KB snapshot), or no window at a known rate (ring index modulo 0).
  const auto vf_with = [&](std::vector<float> window) {
    ecg::VentricularFibrillationDetector::State state;
    state.window = std::move(window);
    return save(state, 250);
  };
  for (const auto& bad : {vf_with({0.1f, std::nanf(""), 0.2f}), vf_with({})}) {
    ops::SnapshotReader reader(bad);
    ecg::VentricularFibrillationDetector::State state;
    EXPECT_THROW(state.Load(reader), ops::SnapshotError);
  }
  const std::string ok = vf_with(std::vector<float>(1000, 0.0f));
  ops::SnapshotReader ok_reader(ok);
  ecg::VentricularFibrillationDetector::State ok_state;
  EXPECT_NO_THROW(ok_state.Load(ok_reader));
}

// How many ecg.arrhythmia states in a fuzz_snapshot patient input are refused with `why`.
int EcgStatesRefused(const std::string& input, const std::string& why) {
  EXPECT_EQ(input.at(0), '\0');  // fuzz_snapshot's patient path
  v1::PatientStateSnapshot snapshot;
  EXPECT_TRUE(snapshot.ParseFromString(input.substr(1)));
  const auto plan = DefaultPlan();
  int refused = 0;
  for (const auto& os : snapshot.operators()) {
    for (const auto& op : plan->operators()) {
      if (op->name() != os.operator_name() || os.operator_name() != "ecg.arrhythmia") continue;
      try {
        op->MakeState()->Restore(os.state());
      } catch (const ops::SnapshotError& e) {
        refused += std::string(e.what()).find(why) != std::string::npos;
      }
    }
  }
  return refused;
}

// fuzz_snapshot: a patient snapshot (31 KB) whose ecg.arrhythmia state held a NaN in the QRS
// detector's conditioned-signal ring restored; the beat classifier ranked a window of it
// (OrderStatistic: NaN -> int, undefined behaviour). The state is now refused on its own.
TEST_F(FuzzRegression, SnapshotQrsRingWithNanIsSnapshotError) {
  EXPECT_GE(EcgStatesRefused(Input("snapshot_qrs_ring_nan.bin"), "not finite"), 1);
}

// fuzz_snapshot: QRS peak indices far outside the stream restored; Decide's difference of two
// of them overflowed int64.
TEST_F(FuzzRegression, SnapshotQrsIndexBeyondStreamIsSnapshotError) {
  EXPECT_GE(EcgStatesRefused(Input("snapshot_qrs_index_overflow.bin"), "beyond the stream"), 1);
}

// fuzz_patient_config: co2.hypoventilation.trend_nights = 2^32 was converted to int (undefined
// behaviour) before its range check; now the range check comes first and names the key.
TEST_F(FuzzRegression, PatientConfigHugeWholeNumberIsOptionError) {
  v1::PatientConfig pc;
  ASSERT_TRUE(pc.ParseFromString(Input("patient_config_trend_nights_overflow.bin")));
  const std::map<std::string, double> overrides(pc.parameters().begin(), pc.parameters().end());
  ASSERT_EQ(overrides.count("co2.hypoventilation.trend_nights"), 1u);
  try {
    DefaultPlan()->WithOverrides(overrides, pc.time_zone());
    FAIL() << "accepted";
  } catch (const ops::OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("trend_nights"), std::string::npos) << e.what();
  }
  // The same conversion in adherence.usage.session_source.
  EXPECT_THROW(DefaultPlan()->WithOverrides({{"adherence.usage.session_source", 1e10}}),
               ops::OptionError);
}

// fuzz_wfdb input (header / signal): the byte offset "16+-5" once read before the file.
TEST_F(FuzzRegression, WfdbNegativeByteOffsetIsWfdbError) {
  const auto parts = Split("rec 1 250 4\nrec.dat 16+-5 200 16 0 0 0 0 ECG\n" + kSeparator +
                           std::string(16, '\x01'));
  Write(dir_ / "rec.hea", parts.at(0));
  Write(dir_ / "rec.dat", parts.at(1));
  EXPECT_THROW(io::ReadWfdbRecord(dir_ / "rec"), io::WfdbError);
}

// fuzz_resmed input (STR.edf only): a STR.edf whose Date signal has no samples once divided by
// zero; it is an EdfError naming the field.
TEST_F(FuzzRegression, ResmedEmptyDateSignalIsEdfError) {
  const std::vector<std::string> labels = {"Date", "MaskOn", "MaskOff", "MaskEvents", "Duration"};
  const auto field = [](std::string s, size_t width) {
    s.resize(width, ' ');
    return s;
  };
  const size_t ns = labels.size();
  std::string h = field("0", 8) + field("X", 80) + field("X", 80) + field("01.01.26", 8) +
                  field("12.00.00", 8) + field(std::to_string(256 * (ns + 1)), 8) + field("", 44) +
                  field("0", 8) + field("86400", 8) + field(std::to_string(ns), 4);
  for (const auto& [value, width] : std::vector<std::pair<std::string, size_t>>{{"", 16},
                                                                                {" ", 80},
                                                                                {"-", 8},
                                                                                {"-32768", 8},
                                                                                {"32767", 8},
                                                                                {"-32768", 8},
                                                                                {"32767", 8},
                                                                                {" ", 80},
                                                                                {"1", 8},
                                                                                {" ", 32}}) {
    for (size_t i = 0; i < ns; ++i) h += field(value.empty() ? labels[i] : value, width);
  }
  fs::create_directories(dir_ / "card/DATALOG/20250202");
  Write(dir_ / "card/STR.edf", h);
  try {
    io::ReadResmedCard(dir_ / "card");
    FAIL() << "accepted";
  } catch (const io::EdfError& e) {
    EXPECT_NE(std::string(e.what()).find("Date"), std::string::npos) << e.what();
  }
}

}  // namespace
