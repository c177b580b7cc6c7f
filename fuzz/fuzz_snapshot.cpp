// fuzz_snapshot: state snapshots as a restarted instance reads them from vigil.state.v1.
//
// Input: one selector byte, then the bytes.
//   selector < 0x80: the bytes are a v1::PatientStateSnapshot -> PatientAnalysis::Restore (the
//     default plan: every registered operator). The service (RestorePartitions in
//     pipeline/service/stream_service.cpp) catches any std::exception there and starts the
//     patient fresh, so std::exception types are the expected failures (documented:
//     ops::SnapshotError; a new exception type is printed once, for triage).
//   selector >= 0x80: the bytes are one operator's own state (OperatorState.state); the
//     operator is Operators()[(selector & 0x7f) % count] -> MakeState()->Restore(bytes), which
//     is documented to throw ops::SnapshotError only (anything else is a finding).
// Whatever restored must survive Snapshot() -> Restore() (no exception at all) and give the
// same snapshot again, and must close cleanly (Finish). No data is fed after a restore of
// hostile bytes: operators may rely on the runtime's time order, which a forged snapshot can
// contradict.
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <typeinfo>

#include "fuzz/fuzz_support.h"
#include "operators/core/snapshot.h"
#include "vigil/v1/state.pb.h"

using namespace vigil;

namespace {

std::string TypeName(const std::exception& e) {
  int status = 0;
  char* name = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
  std::string out = status == 0 && name ? name : typeid(e).name();
  std::free(name);
  return out;
}

// Every exception type other than SnapshotError is reported once per process (triage).
void NoteException(const std::exception& e) {
  static std::set<std::string> seen;
  if (dynamic_cast<const ops::SnapshotError*>(&e) != nullptr) return;
  const std::string type = TypeName(e);
  if (seen.insert(type).second) {
    std::fprintf(stderr, "==vigil-fuzz== note: Restore threw %s (not ops::SnapshotError): %s\n",
                 type.c_str(), e.what());
  }
}

void PatientSnapshot(std::string_view bytes) {
  static const auto plan = fuzz::DefaultPlan();
  v1::PatientStateSnapshot snapshot;
  if (!snapshot.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  analysis::PatientAnalysis patient("fuzz-patient", plan);
  try {
    patient.Restore(snapshot);
  } catch (const std::exception& e) {
    NoteException(e);
    return;
  }
  const v1::PatientStateSnapshot again = patient.Snapshot();
  analysis::PatientAnalysis second("fuzz-patient", plan);
  try {
    second.Restore(again);
  } catch (const std::exception& e) {
    fuzz::Finding(std::string("a restored patient's own snapshot does not restore: ") + e.what());
  }
  if (fuzz::ComparableSnapshot(second.Snapshot()) != fuzz::ComparableSnapshot(again)) {
    fuzz::Finding("restore(snapshot(restored)) differs from restored");
  }
  analysis::Outputs out;
  second.Finish(out);
}

void OperatorSnapshot(uint8_t selector, std::string_view bytes) {
  static const auto plan = fuzz::DefaultPlan();
  const auto operators = plan->operators();
  const auto& op = *operators[(selector & 0x7f) % operators.size()];
  auto state = op.MakeState();
  try {
    state->Restore(bytes);
  } catch (const ops::SnapshotError&) {
    return;
  }
  const std::string again = state->Snapshot();
  auto second = op.MakeState();
  try {
    second->Restore(again);
  } catch (const std::exception& e) {
    fuzz::Finding(std::string(op.name()) +
                  ": a restored state's own snapshot does not restore: " + e.what());
  }
  if (second->Snapshot() != again) {
    fuzz::Finding(std::string(op.name()) + ": restore(snapshot(restored)) differs from restored");
  }
  ops::Events events;
  op.Finish(*second, events);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes = fuzz::AsText(data + 1, size - 1);
  if (data[0] < 0x80) {
    PatientSnapshot(bytes);
  } else {
    OperatorSnapshot(data[0], bytes);
  }
  return 0;
}
