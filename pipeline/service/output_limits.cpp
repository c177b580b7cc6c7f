#include "pipeline/service/output_limits.h"

#include <algorithm>

namespace vigil::service {

SnapshotFit FitSnapshot(v1::PatientStateSnapshot& snapshot, size_t max_bytes) {
  SnapshotFit fit;
  fit.original_bytes = fit.bytes = snapshot.ByteSizeLong();
  while (fit.bytes > max_bytes) {
    auto* ops = snapshot.mutable_operators();
    int victim = -1;
    size_t victim_bytes = 0;
    for (int i = 0; i < ops->size(); ++i) {
      const size_t bytes = ops->Get(i).ByteSizeLong();
      const bool alerts = ops->Get(i).operator_name() == "_alert_manager";
      const bool victim_alerts =
          victim >= 0 && ops->Get(victim).operator_name() == "_alert_manager";
      // Any other state before the alert manager's; among equals the largest.
      if (victim < 0 || (victim_alerts && !alerts) ||
          (victim_alerts == alerts && bytes > victim_bytes)) {
        victim = i;
        victim_bytes = bytes;
      }
    }
    if (victim < 0) {
      fit.fits = false;
      return fit;
    }
    const auto& op = ops->Get(victim);
    fit.dropped.push_back(op.stream().empty() ? op.operator_name()
                                              : op.operator_name() + "/" + op.stream());
    ops->DeleteSubrange(victim, 1);
    fit.bytes = snapshot.ByteSizeLong();
  }
  return fit;
}

void SetOriginalKey(v1::DeadLetter& letter, std::string_view key, size_t max_key_bytes) {
  letter.set_original_key_bytes(static_cast<int64_t>(key.size()));
  letter.set_original_key_truncated(key.size() > max_key_bytes);
  letter.set_original_key(std::string(key.substr(0, std::min(key.size(), max_key_bytes))));
}

void SetOriginalValue(v1::DeadLetter& letter, std::string_view value, size_t max_value_bytes) {
  letter.set_original_value_bytes(static_cast<int64_t>(value.size()));
  letter.set_original_value_truncated(value.size() > max_value_bytes);
  letter.set_original_value(std::string(value.substr(0, std::min(value.size(), max_value_bytes))));
}

}  // namespace vigil::service
