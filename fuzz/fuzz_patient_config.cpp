// fuzz_patient_config: record values on vigil.patient-config.v1 -> the validation of
// StreamService::Impl::OnPatientConfig (pipeline/service/stream_service.cpp): parse, reject
// non-finite values, AnalysisPlan::WithOverrides(overrides, time_zone). The service catches
// any std::exception there (the record is dead-lettered), so those are expected.
//
// A configuration that is accepted is then used as the service uses it: a patient analysed with
// the default plan gets the new plan (PatientAnalysis::SetPlan, operator states move through
// their snapshots), a few seconds of plausible data of every signal run through it, and its
// snapshot restores into an analysis built on the new plan. Exceptions there are findings:
// validation let through parameters the operators cannot work with.
#include <cmath>
#include <map>
#include <string>

#include "fuzz/fuzz_support.h"
#include "vigil/v1/patient_config.pb.h"

using namespace vigil;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto base = fuzz::DefaultPlan();
  v1::PatientConfig pc;
  if (!pc.ParseFromArray(data, static_cast<int>(size))) return 0;

  // --- as OnPatientConfig ---
  std::shared_ptr<const analysis::AnalysisPlan> plan;
  try {
    std::map<std::string, double> overrides(pc.parameters().begin(), pc.parameters().end());
    for (const auto& [key, value] : overrides) {
      if (!std::isfinite(value)) return 0;  // OptionError "not finite" in the service
    }
    plan = overrides.empty() && pc.time_zone().empty()
               ? base
               : base->WithOverrides(overrides, pc.time_zone());
  } catch (const std::exception&) {
    return 0;  // dead-lettered, previous settings stay
  }

  // --- as the patient's lane applies it ---
  analysis::Outputs out;
  uint64_t sequence = 0;
  analysis::PatientAnalysis patient("fuzz-patient", base);
  fuzz::FeedSyntheticSeconds(patient, *base, fuzz::kT0, 2, &sequence, out);
  patient.SetPlan(plan, pc.time_zone());
  fuzz::FeedSyntheticSeconds(patient, *plan, fuzz::kT0 + 2 * ops::kMicrosPerSecond, 2, &sequence,
                             out);
  const v1::PatientStateSnapshot snapshot = patient.Snapshot();
  analysis::PatientAnalysis restored("fuzz-patient", plan);
  try {
    restored.Restore(snapshot);
  } catch (const std::exception& e) {
    fuzz::Finding(std::string("snapshot under an accepted configuration does not restore: ") +
                  e.what());
  }
  restored.Finish(out);
  return 0;
}
