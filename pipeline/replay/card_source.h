// A ResMed SD card as a TelemetrySource: the same vigil.v1.TelemetryEnvelope stream a gateway
// beside the device would send (signal frames as raw integers with gain and offset, and device
// events: therapy session start/stop, settings), so a card can go through PatientAnalysis and,
// from the service work, to Kafka. Invalid samples (the device's "no data" codes, e.g. SpO2
// without an oximeter) are not sent: frames hold runs of valid samples, and what is missing is a
// gap, as it would be on the wire.
#pragma once

#include <filesystem>
#include <memory>

#include "pipeline/replay/telemetry_source.h"

namespace vigil::replay {

// Throws io::CardError / io::EdfError (file and field named) or std::runtime_error.
std::unique_ptr<TelemetrySource> OpenResmedCard(const std::filesystem::path& card_dir,
                                                const SourceOptions& options);

}  // namespace vigil::replay
