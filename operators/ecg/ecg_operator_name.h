// The operator every ECG stage belongs to: its parameters are configured, validated and named
// in messages as "ecg.arrhythmia.<key>", whichever stage reads them.
#pragma once

#include <string_view>

namespace vigil::ecg {

inline constexpr std::string_view kEcgOperatorName = "ecg.arrhythmia";

}  // namespace vigil::ecg
