// Patient ids never appear in logs: a keyed hash stands for them, stable within a deployment
// (same salt) so that log lines about one patient can be correlated.
#pragma once

#include <string>
#include <string_view>

namespace vigil::service {

// First 12 hex digits of SHA-256(salt || 0x00 || patient_id). Thread-safe.
std::string PatientLogId(std::string_view salt, std::string_view patient_id);

}  // namespace vigil::service
