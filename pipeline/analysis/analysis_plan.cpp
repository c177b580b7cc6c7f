#include <date/tz.h>
#include <fmt/format.h>

#include <stdexcept>

#include "operators/core/options.h"
#include "operators/ecg/af_model.h"
#include "pipeline/analysis/alert_manager.h"
#include "pipeline/analysis/operator_registry.h"
#include "pipeline/analysis/patient_analysis.h"

namespace vigil::analysis {
namespace {

std::string KnownOperators() {
  std::string names;
  for (const auto& e : Operators()) names += (names.empty() ? "" : ", ") + std::string(e.name);
  return names.empty() ? "(none)" : names;
}

}  // namespace

std::shared_ptr<const AnalysisPlan> AnalysisPlan::Make(AnalysisConfig config) {
  CheckAlertRules();  // a bad alert declaration stops the start, not the first episode
  // A model file replacing the built-in one is loaded and checked before any operator is made:
  // a missing or foreign model stops the start naming its path (ops::ModelError).
  if (!config.af_model.empty()) ecg::InstallAfModel(config.af_model);
  auto plan = std::shared_ptr<AnalysisPlan>(new AnalysisPlan());
  try {
    date::locate_zone(config.default_time_zone);
  } catch (const std::exception&) {
    throw ops::OptionError("default_time_zone", config.default_time_zone,
                           "not an IANA time zone (e.g. Europe/Copenhagen)");
  }
  ops::RequireRange("reorder_tolerance_s", config.reorder_tolerance_s, 0, 3600);
  ops::RequireRange("gap_tolerance_s", config.gap_tolerance_s, 0, 3600);
  ops::RequireRange("max_time_ahead_s", config.max_time_ahead_s, 1, 3660 * 86400.0);
  ops::RequireRange("signal_lost_alert_s", config.signal_lost_alert_s, 0, 86400);
  ops::RequireRange("alerts.max_raised_per_hour", config.alerts.max_raised_per_hour, 1, 1000);
  ops::RequireRange("alerts.reopen_within_s", config.alerts.reopen_within_s, 0, 3600);
  ops::RequireRange("alerts.latch_hold_s", config.alerts.latch_hold_s, 0, 86400);
  for (size_t i = 0; i < config.operators.size(); ++i) {
    const auto& oc = config.operators[i];
    const ops::OperatorSpec* entry = FindOperator(oc.name);
    if (entry == nullptr) {
      throw std::invalid_argument(fmt::format(
          "operators[{}].name = {}: unknown operator (known: {})", i, oc.name, KnownOperators()));
    }
    for (size_t j = 0; j < i; ++j) {
      if (config.operators[j].name == oc.name) {
        throw std::invalid_argument(
            fmt::format("operators[{}].name = {}: configured twice", i, oc.name));
      }
    }
    plan->operators_.push_back(entry->make(oc.parameters, {config.default_time_zone}));
  }
  plan->config_ = std::move(config);
  return plan;
}

std::shared_ptr<const AnalysisPlan> AnalysisPlan::FromOperators(
    AnalysisConfig config, std::vector<std::shared_ptr<const ops::StreamOperator>> operators) {
  config.operators.clear();
  for (const auto& op : operators) config.operators.push_back({std::string(op->name()), {}});
  auto plan = std::shared_ptr<AnalysisPlan>(new AnalysisPlan());
  plan->config_ = std::move(config);
  plan->operators_ = std::move(operators);
  return plan;
}

std::shared_ptr<const AnalysisPlan> AnalysisPlan::WithOverrides(
    const std::map<std::string, double>& overrides, const std::string& time_zone) const {
  const bool new_zone = !time_zone.empty() && time_zone != config_.default_time_zone;
  if (overrides.empty() && !new_zone) {
    return std::shared_ptr<const AnalysisPlan>(new AnalysisPlan(*this));
  }
  AnalysisConfig config = config_;
  if (new_zone) {
    try {
      date::locate_zone(time_zone);
    } catch (const std::exception&) {
      throw ops::OptionError("time_zone", time_zone, "not an IANA time zone (e.g. Europe/Oslo)");
    }
    config.default_time_zone = time_zone;
  }
  for (const auto& [key, value] : overrides) {
    bool matched = false;
    for (auto& oc : config.operators) {
      const std::string prefix = oc.name + ".";
      if (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0) {
        oc.parameters[key.substr(prefix.size())] = value;
        matched = true;
        break;
      }
    }
    if (!matched) {
      throw ops::OptionError(key, fmt::format("{}", value),
                             "no configured operator takes this parameter");
    }
  }
  auto plan = std::shared_ptr<AnalysisPlan>(new AnalysisPlan());
  for (size_t i = 0; i < config.operators.size(); ++i) {
    // Operators are rebuilt when their parameters or the patient's zone changed.
    if (!new_zone && config.operators[i].parameters == config_.operators[i].parameters) {
      plan->operators_.push_back(operators_[i]);  // unchanged: share the immutable operator
    } else {
      const ops::OperatorSpec* entry = FindOperator(config.operators[i].name);
      if (entry == nullptr) {
        throw std::invalid_argument(
            fmt::format("operator {} is not in the registry: its parameters cannot be overridden",
                        config.operators[i].name));
      }
      plan->operators_.push_back(
          entry->make(config.operators[i].parameters, {config.default_time_zone}));
    }
  }
  plan->config_ = std::move(config);
  return plan;
}

}  // namespace vigil::analysis
