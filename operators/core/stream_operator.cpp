#include "operators/core/stream_operator.h"

#include "operators/core/options.h"

namespace vigil::ops {

void StreamOperator::OnDeviceEvent(OperatorState&, const DeviceEventView&, Events&) const {}
void StreamOperator::OnGap(OperatorState&, Signal, TimeUs, TimeUs, Events&) const {}
void StreamOperator::AdvanceTo(OperatorState&, TimeUs, Events&) const {}
void StreamOperator::Finish(OperatorState&, Events&) const {}

double ParameterReader::Get(std::string_view key, double default_value) {
  used_[std::string(key)] = true;
  const auto it = parameters_.find(key);
  return it == parameters_.end() ? default_value : it->second;
}

void ParameterReader::CheckAllUsed() const {
  for (const auto& [key, value] : parameters_) {
    if (!used_.count(key)) {
      throw OptionError(prefix_ + "." + key, fmt::format("{}", value),
                        "unknown parameter of operator " + prefix_);
    }
  }
}

}  // namespace vigil::ops
