// Turns operator episodes into clinician-facing alerts, per patient: a state machine per
// condition (raised -> updated -> cleared) with minimum durations, hysteresis against flapping,
// latching for the conditions CLINICAL.md marks latching, technical conditions suppressing the
// clinical alerts a bad signal would fake, a per-patient rate limit, and deterministic ids.
//
// All times are device time. Not thread-safe: one instance per patient, one thread at a time.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/operator_spec.h"
#include "pipeline/analysis/patient_analysis.h"
#include "vigil/v1/alert.pb.h"

namespace vigil::analysis {

// How one episode kind becomes an alert (the table in alert_manager.cpp; see docs).
struct ConditionRule {
  v1::Condition condition = v1::CONDITION_UNSPECIFIED;
  v1::Priority priority = v1::PRIORITY_UNSPECIFIED;
  bool latching = false;
  bool technical = false;
  // The alert is raised only once the episode has lasted this long (e.g. AF: 30 s).
  double min_duration_s = 0;
  // Which signal family the condition belongs to, for technical suppression.
  using Family = ops::SignalFamily;
  Family family = Family::kAny;
  // Whether this kind alerts at all (apneas and hypopneas feed the AHI, not alarms).
  bool alerts = true;
};

// The rule for an episode kind: as the operator that emits it declares it (its OperatorSpec),
// or the runtime for its own conditions (signal lost, device offline). Throws std::logic_error
// on first use if a declared condition is not a vigil.v1.Condition or two declarations of one
// kind differ.
const ConditionRule& RuleFor(ops::EpisodeKind kind);

// Collects the alert rules now (otherwise at the first episode): throws std::logic_error as
// RuleFor does. AnalysisPlan::Make calls it, so a bad declaration stops the start.
void CheckAlertRules();

// "Ventricular tachycardia": the one display title of a condition.
std::string ConditionTitle(v1::Condition condition);

// Deterministic alert id: the same patient, condition and onset give the same id everywhere.
std::string AlertId(const std::string& patient_id, v1::Condition condition, ops::TimeUs onset_us);

class AlertManager {
 public:
  AlertManager(std::string patient_id, AlertPolicy policy);

  void SetPolicy(const AlertPolicy& policy) { policy_ = policy; }

  // An episode from an operator of `device_id`. Appends the alert records it causes.
  void OnEpisode(const ops::Episode& episode, const std::string& device_id,
                 std::vector<v1::Alert>& out);

  // Device time has reached `now_us`: pending alerts whose minimum duration has passed are
  // raised, ended alerts past their hysteresis or latch hold are cleared.
  void AdvanceTo(ops::TimeUs now_us, std::vector<v1::Alert>& out);

  // End of a finite recording: clears everything still active at `end_us`.
  void Finish(ops::TimeUs end_us, std::vector<v1::Alert>& out);

  // Counters for metrics: clinical alerts not raised because a technical condition covered them,
  // and alerts held back by the rate limit.
  uint64_t suppressed_by_technical() const { return suppressed_by_technical_; }
  uint64_t suppressed_by_rate_limit() const { return suppressed_by_rate_limit_; }

  std::string Snapshot() const;
  // Throws ops::SnapshotError on a malformed snapshot (state unchanged).
  void Restore(std::string_view bytes);

 private:
  struct Active {
    ops::EpisodeKind kind{};
    v1::Alert alert;      // the last record emitted (or prepared, when pending)
    bool raised = false;  // false while waiting for the minimum duration
    bool ended = false;   // the condition is over; clear after hysteresis/latch
    ops::TimeUs end_us = 0;
  };

  bool TechnicalActive(ConditionRule::Family family) const;
  bool RateLimited(ops::TimeUs now_us, v1::Priority priority);
  void Emit(Active& a, v1::AlertState state, ops::TimeUs event_us, std::vector<v1::Alert>& out);
  static v1::Alert Prepare(const std::string& patient_id, const ConditionRule& rule,
                           const ops::Episode& episode, const std::string& device_id);

  std::string patient_id_;
  AlertPolicy policy_;
  std::map<v1::Condition, Active> active_;
  std::vector<ops::TimeUs> raised_times_;        // for the rate limit (last hour)
  std::map<v1::Condition, uint32_t> held_back_;  // rate-limited since the last record
  uint64_t suppressed_by_technical_ = 0;
  uint64_t suppressed_by_rate_limit_ = 0;
};

}  // namespace vigil::analysis
