// Idle patients kept as their compressed state snapshot instead of live operator states
// (issue 16 item 6): a patient whose devices have been silent for limits.evict_idle_after_s
// costs about 20 KB instead of about 87 KB (bench/patient_memory_bench). Its next record wakes it
// with exactly the state it had (snapshot and restore are exact), so nothing it would have
// raised changes.
#pragma once

#include <memory>
#include <string>

#include "pipeline/analysis/patient_analysis.h"

namespace vigil::service {

// The patient's state snapshot, serialized and deflated.
std::string Hibernate(const analysis::PatientAnalysis& patient);

// The snapshot `Hibernate` packed (to write a hibernated patient's state). Throws
// ops::SnapshotError when `packed` does not inflate or parse.
v1::PatientStateSnapshot Unpack(const std::string& packed);

// A live analysis of `patient_id` under `plan` with the state `Hibernate` packed. Throws
// ops::SnapshotError when `packed` does not inflate or restore.
std::unique_ptr<analysis::PatientAnalysis> Wake(const std::string& patient_id,
                                                std::shared_ptr<const analysis::AnalysisPlan> plan,
                                                const std::string& packed);

}  // namespace vigil::service
