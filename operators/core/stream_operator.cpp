#include "operators/core/stream_operator.h"

#include "operators/core/options.h"

namespace vigil::ops {

void StreamOperator::OnDeviceEvent(OperatorState&, const DeviceEventView&, Events&) const {}
void StreamOperator::OnGap(OperatorState&, Signal, TimeUs, TimeUs, Events&) const {}
void StreamOperator::AdvanceTo(OperatorState&, TimeUs, Events&) const {}
void StreamOperator::Finish(OperatorState&, Events&) const {}

}  // namespace vigil::ops
