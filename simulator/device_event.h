// Device events the simulated devices report, without protobuf (the pipeline adapter maps them
// to vigil.v1.DeviceEvent).
#pragma once

#include <cstdint>

#include "operators/core/time.h"
#include "simulator/patient_profile.h"

namespace vigil::sim {

enum class SimDevice : uint8_t { kEcg, kVentilator, kCo2 };

struct SimDeviceEvent {
  enum class Type : uint8_t {
    kSessionStart,  // mask on
    kSessionStop,   // mask off
    kSettings,      // bilevel ST settings of the profile, with mask and intended leak
    kLeadOff,       // ECG electrode contact lost
    kLeadOk,        // contact back
  };
  SimDevice device = SimDevice::kEcg;
  Type type = Type::kSessionStart;
  ops::TimeUs time_us = 0;
};

}  // namespace vigil::sim
