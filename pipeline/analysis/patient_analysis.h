// Everything Vigil does for one patient, independent of Kafka: the operator chains over the
// patient's signal streams, event-time bookkeeping (sequence numbers, reordering, gaps,
// watermark), the alert manager and the aggregators. The Kafka service and the offline replay
// both drive this class, which is why they produce the same alerts and aggregates.
//
// Threading: one PatientAnalysis is used by one thread at a time (the patient's serial lane).
// The AnalysisPlan it shares with other patients is immutable and thread-safe.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "operators/core/event.h"
#include "operators/core/signal.h"
#include "operators/core/stream_operator.h"
#include "vigil/v1/aggregate.pb.h"
#include "vigil/v1/alert.pb.h"
#include "vigil/v1/state.pb.h"

namespace vigil::analysis {

// Alert-manager policy (service-wide; per-patient thresholds live in the operators' parameters).
struct AlertPolicy {
  // At most this many RAISED alerts per patient per hour of device time; further ones are
  // counted in the next record's `suppressed_count` instead of being sent. High-priority alerts
  // are never rate limited.
  int max_raised_per_hour = 12;
  // A cleared condition that comes back within this time re-opens the same alert (hysteresis
  // against flapping) instead of raising a new one.
  double reopen_within_s = 60;
  // Latching (high-priority) alerts stay active this long after their condition ends, then clear.
  double latch_hold_s = 300;
  // Technical conditions suppress the clinical ECG / respiratory alerts that overlap them.
  bool technical_suppresses_clinical = true;
};

struct OperatorConfig {
  std::string name;            // registry name
  ops::Parameters parameters;  // keys without the "<name>." prefix
};

struct AnalysisConfig {
  std::vector<OperatorConfig> operators;
  AlertPolicy alerts;
  // IANA zone used for therapy days when the patient's configuration names none.
  std::string default_time_zone = "Europe/Copenhagen";
  // The AF model file to serve instead of the built-in models/ecg_af.model ("": built in;
  // operators/ecg/af_model.h). Loaded and validated when the plan is made.
  std::string af_model;
  // Frames up to this much older than the patient's newest are reordered; older ones rejected.
  double reorder_tolerance_s = 5;
  // A hole of more than this between consecutive frames of a stream is a gap (signal lost).
  double gap_tolerance_s = 0.5;
  // Emit minute aggregates (and therapy-day / 30-day aggregates when adherence runs).
  bool minute_aggregates = true;
  // A gap at least this long also raises a (technical, low) "signal lost" alert; shorter gaps
  // only reset the operators.
  double signal_lost_alert_s = 10;
  // A frame or device event that arrived with an arrival time (its Kafka timestamp) and is more
  // than this ahead of the patient's clock (the newest of its watermark and that arrival time)
  // is rejected: one far-future time would otherwise move the watermark for good and make every
  // therapy-day loop run once per day up to it. Without an arrival time (offline files, where a
  // device's own upload may leap ahead by days) only times no device can have
  // (ops::kMaxPlausibleTimeUs) are rejected, so that the same data give the same result
  // offline and through Kafka.
  double max_time_ahead_s = 86400;
};

// The operators built from an AnalysisConfig, plus the policy. Immutable.
class AnalysisPlan {
 public:
  // Builds every configured operator. Throws ops::OptionError naming "<operator>.<key>" and the
  // value on a bad parameter, std::invalid_argument for an unknown operator name.
  static std::shared_ptr<const AnalysisPlan> Make(AnalysisConfig config);

  // A plan over operators built elsewhere (tests, benchmarks): `config.operators` is ignored.
  static std::shared_ptr<const AnalysisPlan> FromOperators(
      AnalysisConfig config, std::vector<std::shared_ptr<const ops::StreamOperator>> operators);

  // The same plan with per-patient parameter overrides ("<operator>.<key>" -> value) applied
  // and, when `time_zone` is given and differs, the patient's own zone (operators that keep
  // therapy days by it are rebuilt with it); operators without changes are shared with this
  // plan. Throws like Make.
  std::shared_ptr<const AnalysisPlan> WithOverrides(const std::map<std::string, double>& overrides,
                                                    const std::string& time_zone = "") const;

  const AnalysisConfig& config() const { return config_; }
  std::span<const std::shared_ptr<const ops::StreamOperator>> operators() const {
    return operators_;
  }

 private:
  AnalysisConfig config_;
  std::vector<std::shared_ptr<const ops::StreamOperator>> operators_;
};

// One decoded signal frame (physical units) as it arrived.
struct FrameView {
  std::string_view device_id;
  ops::Signal signal = ops::Signal::kUnknown;
  int lead = 0;  // vigil.v1.EcgLead number; 0 for non-ECG
  uint64_t sequence = 0;
  ops::TimeUs first_sample_us = 0;
  double sample_rate_hz = 0;
  std::span<const float> values;
  // Processing time the record arrived (e.g. its Kafka timestamp), microseconds since the
  // epoch; 0 when unknown (offline replay). Only device-offline checks use it.
  ops::TimeUs arrival_us = 0;
};

enum class FrameOutcome {
  kProcessed,  // analysed (possibly after reordering)
  kDuplicate,  // sequence already seen: ignored
  kTooLate,    // older than the reordering tolerance: counted and dropped
  kRejected,   // its time cannot be placed on the patient's clock, or it would start a stream
               // or device beyond the patient's bounds (64 / 16): last_rejection() says why
};

// What processing produced; the caller publishes it (Kafka) or writes it (JSON Lines).
struct Outputs {
  std::vector<v1::Alert> alerts;
  std::vector<v1::Aggregate> aggregates;
  ops::Events events;  // raw operator events (beats, breaths, episodes), for replay output
  // Time each operator spent in this call, nanoseconds (service metrics: per-operator
  // processing time). Left empty by implementations that do not measure it.
  std::vector<std::pair<std::string_view, int64_t>> operator_ns;
  void clear() {
    alerts.clear();
    aggregates.clear();
    events.clear();
    operator_ns.clear();
  }
};

class PatientAnalysis {
 public:
  PatientAnalysis(std::string patient_id, std::shared_ptr<const AnalysisPlan> plan);
  ~PatientAnalysis();
  PatientAnalysis(PatientAnalysis&&) noexcept;
  PatientAnalysis& operator=(PatientAnalysis&&) noexcept;

  const std::string& patient_id() const;

  // kProcessed, kDuplicate, kTooLate or kRejected; never throws for hostile sequence numbers
  // or times (each frame costs bounded work). A sequence number at or below the stream's last
  // one, on a frame starting after everything received from the stream, is a device restart:
  // the stream resynchronises (counted, with a "sequence_restart" measurement in `out.events`;
  // the silence around the reboot is a gap like any other).
  FrameOutcome OnFrame(const FrameView& frame, Outputs& out);
  // kProcessed, or kRejected for an event time implausibly far ahead (as for frames).
  FrameOutcome OnDeviceEvent(std::string_view device_id, const ops::DeviceEventView& event,
                             Outputs& out);
  // Why the last kRejected outcome was given: "<field> = <value>: <reason>".
  const std::string& last_rejection() const;

  // Processing-time check: devices silent for longer than `offline_after_s` (measured on the
  // caller's clock, e.g. Kafka record timestamps) raise "device offline"; their return clears it.
  void CheckDevicesOnline(ops::TimeUs processing_now_us, double offline_after_s, Outputs& out);

  // End of a finite recording (replay): flush reorder buffers, close episodes and windows.
  void Finish(Outputs& out);

  // Per-patient configuration changed (thresholds, time zone): operator states are kept; the
  // states of operators the new plan rebuilt move to the new operators through their
  // snapshots (so no state refers to an operator of the old plan).
  void SetPlan(std::shared_ptr<const AnalysisPlan> plan, std::string time_zone);

  // Device-time watermark: the newest sample end time processed.
  ops::TimeUs watermark_us() const;

  // Counters since construction (metrics): frames reordered, frames whose predecessor never
  // came (a gap was declared instead), ECG frames of non-primary leads (analysed to verify the
  // primary lead's alarms).
  struct Counters {
    uint64_t reordered = 0;
    uint64_t gaps = 0;
    uint64_t secondary_lead_frames = 0;
    uint64_t sequence_restarts = 0;
    uint64_t rejected_times = 0;
    uint64_t suppressed_by_technical = 0;
    uint64_t suppressed_by_rate_limit = 0;
  };
  Counters counters() const;

  v1::PatientStateSnapshot Snapshot() const;
  // Restores a snapshot of this format version or one step older or newer (an upgrade or its
  // rollback). A part that cannot be read - an operator's state in a format this release does
  // not know, say - starts fresh alone and is named in restore_fallbacks(); the rest, the alert
  // manager's open alerts above all, is kept. Throws ops::SnapshotError for a format further
  // away.
  void Restore(const v1::PatientStateSnapshot& snapshot);
  // "<part>[/<stream>]: <why>" for each part the last Restore had to start fresh.
  const std::vector<std::string>& restore_fallbacks() const;

 private:
  struct Impl;
  static void RestorePart(Impl& fresh, const v1::OperatorState& part);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::analysis
