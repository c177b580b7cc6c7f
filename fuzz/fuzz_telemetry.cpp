// fuzz_telemetry: Kafka record values on vigil.telemetry.v1 -> DecodeTelemetry -> one patient's
// PatientAnalysis (every registered operator, default parameters), as the service's lane does
// it: device events, then frames, then the device-offline check; finally the patient's state
// goes through Snapshot() and Restore() into a fresh PatientAnalysis.
//
// Input: up to 16 record values separated by fuzz::kSeparator (a short sequence of records of
// one patient). The key of each record is its envelope's patient_id (a mismatching key is
// rejected before any analysis, so fuzzing it adds nothing); the record timestamp (arrival
// time, which any producer may set) is the envelope's sent_time_us. Records of a patient other
// than the first decoded one are skipped (they would go to another PatientAnalysis).
//
// Findings besides sanitizer reports: an exception from OnFrame / OnDeviceEvent /
// CheckDevicesOnline (documented never to throw for data), a snapshot the analysis itself wrote
// that does not restore, or a restored state whose snapshot differs from the original.
#include <optional>
#include <string>
#include <variant>

#include "fuzz/fuzz_support.h"
#include "pipeline/service/telemetry_decoder.h"
#include "vigil/v1/telemetry.pb.h"

using namespace vigil;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto plan = fuzz::DefaultPlan();
  static const service::DecodeLimits limits;
  constexpr double kOfflineAfterS = 300;  // service default (limits.device_offline_after_s)

  std::optional<analysis::PatientAnalysis> patient;
  analysis::Outputs out;
  for (const std::string_view part : fuzz::SplitInput(fuzz::AsText(data, size), 16)) {
    const std::optional<std::string> value{std::string(part)};
    std::optional<std::string> key;
    ops::TimeUs arrival_us = 0;
    {
      v1::TelemetryEnvelope envelope;
      if (envelope.ParseFromString(*value)) {
        key = envelope.patient_id();
        arrival_us = envelope.sent_time_us();
      }
    }
    auto decoded = service::DecodeTelemetry(key, value, limits);
    auto* record = std::get_if<service::DecodedRecord>(&decoded);
    if (record == nullptr) continue;  // dead-lettered
    if (!patient) patient.emplace(record->patient_id, plan);
    if (record->patient_id != patient->patient_id()) continue;
    out.clear();
    for (const auto& e : record->events) patient->OnDeviceEvent(e.device_id, e.view, out);
    for (const auto& f : record->frames) {
      analysis::FrameView view = service::ViewOf(f, arrival_us);
      patient->OnFrame(view, out);
    }
    patient->CheckDevicesOnline(arrival_us, kOfflineAfterS, out);
  }
  if (!patient) return 0;

  // The state as the service stores it (bytes on vigil.state.v1) and as a restart reads it.
  const v1::PatientStateSnapshot snapshot = patient->Snapshot();
  v1::PatientStateSnapshot stored;
  if (!stored.ParseFromString(snapshot.SerializeAsString())) {
    fuzz::Finding("the patient's own snapshot does not parse");
  }
  analysis::PatientAnalysis restored(patient->patient_id(), plan);
  try {
    restored.Restore(stored);
  } catch (const std::exception& e) {
    fuzz::Finding(std::string("the patient's own snapshot does not restore: ") + e.what());
  }
  if (fuzz::ComparableSnapshot(restored.Snapshot()) != fuzz::ComparableSnapshot(snapshot)) {
    fuzz::Finding("snapshot -> restore -> snapshot changed the state");
  }
  out.clear();
  restored.Finish(out);
  return 0;
}
