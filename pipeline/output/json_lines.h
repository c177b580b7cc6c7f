// The JSON Lines vocabulary shared by `vigil replay` (offline) and `vigil tail` (Kafka), so a
// recording gives the same lines either way. Times in beat/episode lines are seconds from the
// start of the recording; alert and aggregate lines carry the canonical protobuf JSON of the
// v1 message. Evaluation (`vigil eval`) depends on these exact forms.
#pragma once

#include <string>

#include "operators/core/event.h"
#include "vigil/v1/aggregate.pb.h"
#include "vigil/v1/alert.pb.h"

namespace vigil::output {

// {"type":"beat","t":12.345,"sample":4444,"label":"N"}
std::string BeatLine(const ops::Beat& beat, ops::TimeUs origin_us);
// {"type":"episode","rhythm":"AFIB","start":100.0,"end":160.5}; only for closed episodes.
std::string EpisodeLine(const ops::Episode& episode, ops::TimeUs origin_us);
// {"type":"measurement","name":"af_feature.irregularity","t":12.345,"value":0.21}; a
// non-finite value is null.
std::string MeasurementLine(const ops::Measurement& measurement, ops::TimeUs origin_us);
// {"type":"alert","alert":{...protobuf JSON...}}
std::string AlertLine(const v1::Alert& alert);
// The first line of `vigil replay` output: the device time its other lines' seconds count
// from ("t", "start", "end"), so that tools can place the alerts' absolute times in it.
std::string ReplayLine(ops::TimeUs origin_us, std::string_view patient_id);
// {"type":"aggregate","aggregate":{...protobuf JSON...}}
std::string AggregateLine(const v1::Aggregate& aggregate);
// {"type":"therapy_day","date":"2023-08-21","usage_min":254.0,"sessions":4,"ahi":0.2,
//  "leak_p50_lpm":..,"leak_p95_lpm":..,"rr_median":..,"vt_median_ml":..,"mv_median_lpm":..}
// from a WINDOW_KIND_THERAPY_DAY aggregate; absent measures are null.
std::string TherapyDayLine(const v1::Aggregate& day);

// Canonical protobuf JSON of any message (throws std::runtime_error if it cannot be printed).
std::string ToJson(const google::protobuf::Message& message);

}  // namespace vigil::output
