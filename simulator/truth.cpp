#include "simulator/truth.h"

#include <date/date.h>
#include <fmt/format.h>

#include <array>
#include <chrono>

namespace vigil::sim {

std::string_view TruthKindName(TruthKind kind) {
  static constexpr std::array<std::string_view, 18> kNames = {"AFIB",
                                                              "VT",
                                                              "VF",
                                                              "PAUSE",
                                                              "ASYS",
                                                              "BRADY",
                                                              "TACHY",
                                                              "PVC",
                                                              "NOISE",
                                                              "LEADOFF",
                                                              "APNEA",
                                                              "HYPOPNEA",
                                                              "LARGE_LEAK",
                                                              "DISCONNECTION",
                                                              "HYPOVENTILATION",
                                                              "HYPOVENTILATION_NEAR_MISS",
                                                              "ADHERENCE_DECLINE",
                                                              "NON_COMPLIANCE"};
  const auto i = static_cast<size_t>(kind);
  return i < kNames.size() ? kNames[i] : "UNKNOWN";
}

std::string IsoTime(ops::TimeUs t) {
  const date::sys_time<std::chrono::microseconds> tp{std::chrono::microseconds{t}};
  return date::format("%Y-%m-%dT%H:%M:%SZ", tp);
}

std::string TruthLine(std::string_view patient_id, const TruthEvent& event, ops::TimeUs origin_us) {
  std::string params;
  for (const auto& [key, value] : event.params) {
    if (!params.empty()) params += ',';
    params += fmt::format("\"{}\":{}", key, value);
  }
  return fmt::format(
      "{{\"patient\":\"{}\",\"kind\":\"{}\",\"start_us\":{},\"end_us\":{},\"start\":\"{}\","
      "\"end\":\"{}\",\"t_start\":{:.3f},\"t_end\":{:.3f},\"params\":{{{}}}}}",
      patient_id, TruthKindName(event.kind), event.start_us, event.end_us, IsoTime(event.start_us),
      IsoTime(event.end_us), ops::ToSeconds(event.start_us - origin_us),
      ops::ToSeconds(event.end_us - origin_us), params);
}

}  // namespace vigil::sim
