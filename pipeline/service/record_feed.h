// The one way a decoded telemetry record reaches a patient's analysis. The service's lanes, the
// offline replay (`vigil replay`, `vigil report`) and the tests' offline reference all call it,
// so the three cannot drift apart (they had: different orders, texts and dead-letter units).
//
// Order: the record's device events first, then its frames. A gateway's upload of a device's
// stored history (old session events) comes with the first live frames, and operators must see
// that history before the frames move the patient's clock past it.
//
// Returns the items the analysis refused, each with its dead-letter reason and index (frames
// 0..n-1, then events n..): a duplicate or too late frame, a time that cannot be placed on the
// patient's clock, an operator that threw (OPERATOR_FAILURE; the other items still go in).
#pragma once

#include <vector>

#include "pipeline/analysis/patient_analysis.h"
#include "pipeline/service/telemetry_decoder.h"

namespace vigil::service {

// `arrival_us`: when the record arrived (its Kafka timestamp; 0 when unknown, as in a replay).
std::vector<Rejection> FeedRecord(const DecodedRecord& record, ops::TimeUs arrival_us,
                                  analysis::PatientAnalysis& patient, analysis::Outputs& out);

}  // namespace vigil::service
