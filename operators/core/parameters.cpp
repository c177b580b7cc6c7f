#include "operators/core/parameters.h"

namespace vigil::ops {

std::string ParameterName(std::string_view op, std::string_view key) {
  return fmt::format("{}.{}", op, key);
}

void RequireParameter(bool condition, std::string_view op, std::string_view key, double value,
                      std::string_view why) {
  if (!condition) throw OptionError(ParameterName(op, key), fmt::format("{}", value), why);
}

std::string ParameterInfo::Range() const {
  if (kind == ValueKind::kFlag) return "0 or 1";
  const std::string range = fmt::format("in [{}, {}]", lo, hi);
  return std::isnan(off) ? range : fmt::format("{} or {}", off, range);
}

}  // namespace vigil::ops
