#include "operators/core/event.h"

namespace vigil::ops {

std::string_view EpisodeName(EpisodeKind kind) {
  switch (kind) {
    case EpisodeKind::kAtrialFibrillation:
      return "AFIB";
    case EpisodeKind::kVentricularTachycardia:
      return "VT";
    case EpisodeKind::kVentricularFibrillation:
      return "VF";
    case EpisodeKind::kVentricularFlutter:
      return "VFL";
    case EpisodeKind::kAsystole:
      return "ASYS";
    case EpisodeKind::kPause:
      return "PAUSE";
    case EpisodeKind::kBradycardia:
      return "BRADY";
    case EpisodeKind::kExtremeBradycardia:
      return "XBRADY";
    case EpisodeKind::kTachycardia:
      return "TACHY";
    case EpisodeKind::kExtremeTachycardia:
      return "XTACHY";
    case EpisodeKind::kEcgNoise:
      return "NOISE";
    case EpisodeKind::kEcgLeadOff:
      return "LEADOFF";
    case EpisodeKind::kEcgFlatLine:
      return "FLAT";
    case EpisodeKind::kEcgSaturation:
      return "SATURATION";
    case EpisodeKind::kApnea:
      return "APNEA";
    case EpisodeKind::kHypopnea:
      return "HYPOPNEA";
    case EpisodeKind::kLargeLeak:
      return "LARGE_LEAK";
    case EpisodeKind::kDisconnection:
      return "DISCONNECTION";
    case EpisodeKind::kSleepHypoventilation:
      return "HYPOVENTILATION";
    case EpisodeKind::kHypercapnia:
      return "HYPERCAPNIA";
    case EpisodeKind::kCo2RisingTrend:
      return "CO2_TREND";
    case EpisodeKind::kNonCompliance:
      return "NON_COMPLIANCE";
    case EpisodeKind::kAdherenceDecline:
      return "ADHERENCE_DECLINE";
    case EpisodeKind::kSignalLost:
      return "SIGNAL_LOST";
    case EpisodeKind::kDeviceOffline:
      return "DEVICE_OFFLINE";
  }
  return "UNKNOWN";
}

}  // namespace vigil::ops
