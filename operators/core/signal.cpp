#include "operators/core/signal.h"

namespace vigil::ops {

std::string_view SignalName(Signal signal) {
  switch (signal) {
    case Signal::kEcg:
      return "ECG";
    case Signal::kAirwayPressure:
      return "AIRWAY_PRESSURE";
    case Signal::kFlow:
      return "FLOW";
    case Signal::kCo2Waveform:
      return "CO2_WAVEFORM";
    case Signal::kTranscutaneousCo2:
      return "TRANSCUTANEOUS_CO2";
    case Signal::kSpo2:
      return "SPO2";
    case Signal::kLeak:
      return "LEAK";
    case Signal::kPulseRate:
      return "PULSE_RATE";
    case Signal::kTidalVolume:
      return "TIDAL_VOLUME";
    case Signal::kRespiratoryRate:
      return "RESPIRATORY_RATE";
    case Signal::kMinuteVentilation:
      return "MINUTE_VENTILATION";
    case Signal::kPlethysmogram:
      return "PLETHYSMOGRAM";
    case Signal::kArterialPressure:
      return "ARTERIAL_PRESSURE";
    case Signal::kUnknown:
      break;
  }
  return "UNKNOWN";
}

}  // namespace vigil::ops
