// What an operator is, as data: its name, version, inputs, parameters (with defaults, ranges
// and units), the episodes and measurements it emits and how each episode is alerted. The
// registry (pipeline/analysis/operator_registry.cpp) is a list of these; `vigil operators`,
// `vigil run --print-config`, the parameter tables of docs/operators.md and the alert manager
// read them, so adding an operator means its file pair and one registry line.
//
// Operators stay free of Kafka and protobuf: an alert rule names its condition as the
// `vigil.v1.Condition` value without its prefix ("ASYSTOLE"); the alert manager resolves the
// names when the analysis plan is built (at start) and refuses one the schema does not have.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/parameters.h"
#include "operators/core/signal.h"
#include "operators/core/stream_operator.h"

namespace vigil::ops {

// What an operator may need to know about the patient besides its parameters.
struct OperatorContext {
  // IANA zone of the patient's home (therapy days run noon to noon in it): the patient's
  // configured zone, else analysis.default_time_zone.
  std::string time_zone = "Europe/Copenhagen";
};

// Alarm priorities after IEC 60601-1-8.
enum class AlarmPriority : uint8_t { kLow, kMedium, kHigh };

// Which signals an alert is about: an active technical condition of a family suppresses new
// clinical alerts of the same family (a noisy ECG fakes arrhythmias, not apneas).
enum class SignalFamily : uint8_t { kAny, kEcg, kRespiratory, kCo2, kAdherence };

// How the alert manager turns one episode kind into alerts.
struct AlertRule {
  EpisodeKind kind;
  // The vigil.v1.Condition value without "CONDITION_" ("ASYSTOLE"); empty: never alerted.
  std::string_view condition;
  AlarmPriority priority = AlarmPriority::kLow;
  bool latching = false;      // stays active for review after the condition ends
  bool technical = false;     // about the signal, not the patient
  double min_duration_s = 0;  // raised only once the condition has lasted this long
  SignalFamily family = SignalFamily::kAny;
  // False: scored (e.g. apneas into the AHI), never alarmed one by one.
  bool alarm = true;
};

// A measurement an operator emits (ops::Measurement::name).
struct MeasurementSpec {
  std::string_view name;
  std::string_view unit;
  std::string_view doc;
  // One value per therapy night (noon to noon in the patient's zone), emitted when the night
  // closes with a time inside it: published by name in that night's therapy-day aggregate
  // (Aggregate.measures) and shown in the report, with nothing else to edit.
  bool nightly = false;
};

struct OperatorSpec {
  std::string_view name;     // registry name and prefix of its configuration keys
  std::string_view version;  // semantic version; appears in alert evidence
  std::string_view summary;  // one line for listings
  std::span<const Signal> inputs;
  std::vector<ParameterInfo> parameters;  // every key with its default
  std::vector<AlertRule> alerts;          // every episode kind it emits, and how it is alerted
  std::vector<MeasurementSpec> measurements;
  // Builds the operator. Throws OptionError naming "<name>.<key>" and the value on a bad or
  // unknown parameter.
  std::function<std::unique_ptr<const StreamOperator>(const Parameters&, const OperatorContext&)>
      make;
};

// The operator base that answers name(), version() and inputs() from Derived::Spec(), so that
// each is written once, in the spec. Derived declares `static const OperatorSpec& Spec();`.
template <class Derived>
class SpecifiedOperator : public StreamOperator {
 public:
  std::string_view name() const final { return Derived::Spec().name; }
  std::string_view version() const final { return Derived::Spec().version; }
  std::span<const Signal> inputs() const final { return Derived::Spec().inputs; }
};

// The display title of a condition name: "VENTRICULAR_TACHYCARDIA" -> "Ventricular tachycardia".
std::string ConditionTitle(std::string_view condition);

}  // namespace vigil::ops
