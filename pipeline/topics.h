// The v1 topic names. Deployments may rename them in the configuration; these are the defaults
// that deploy/local/kafka.sh creates.
#pragma once

#include <array>
#include <string_view>

namespace vigil::topics {

inline constexpr std::string_view kTelemetry = "vigil.telemetry.v1";
inline constexpr std::string_view kAlerts = "vigil.alerts.v1";
inline constexpr std::string_view kAggregates = "vigil.aggregates.v1";
inline constexpr std::string_view kDeadLetter = "vigil.dlq.v1";
inline constexpr std::string_view kState = "vigil.state.v1";
inline constexpr std::string_view kPatientConfig = "vigil.patient-config.v1";

inline constexpr std::array<std::string_view, 6> kAll = {kTelemetry,  kAlerts, kAggregates,
                                                         kDeadLetter, kState,  kPatientConfig};

}  // namespace vigil::topics
