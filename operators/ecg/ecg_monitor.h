// The ECG operator ("ecg.arrhythmia", input Signal::kEcg): filter -> QRS detection -> beat
// classification -> heart rate, emitting one ops::Beat per detected QRS complex.
//
// Per chunk (EcgMonitor::Process):
//   1. QrsDetector (qrs_detector.h) conditions the signal (baseline high-pass, mains notch,
//      low-pass), detects QRS complexes and returns them with delay-corrected fiducial points;
//   2. each detection's conditioned window goes to the BeatClassifier (beat_classifier.h),
//      which labels it N / V / Q against the patient's running normal template;
//   3. RR and the monitor-rule heart rate (heart_rate.h) complete the ops::Beat, whose time is
//      the fiducial sample's device time (chunk start time + index / rate).
//   4. the rhythm stage (rhythm_analyzer.h) gets the raw chunk and the beats emitted for it and
//      emits the rhythm, alarm and signal-quality episodes (AF, VT, VF/VFL, asystole, pause,
//      brady/tachy and their extreme forms, noise, flat line, saturation, lead off). It decides
//      time-based rules only up to where no further beat can come (the classifier's waiting
//      beats and the detector's search-back bound that time).
//
// Parameters (keys without the "ecg.arrhythmia." prefix), all optional: EcgMonitorParameters()
// composes the tables of the stages (QrsParameters, BeatClassifierParameters, RhythmParameters,
// PulseParameters) and `verify_alarms`; `vigil operators` lists them. Make throws
// ops::OptionError naming "ecg.arrhythmia.<key>" and the value for a value out of range or an
// unknown key.
//
// Sampling rate: taken from the chunks (125-1000 Hz). Chunks at another rate are ignored (no
// beats; a signal-quality stage reports it). A rate change restarts the state. A notch or
// low-pass corner too close to a low rate's Nyquist frequency is lowered/disabled for that
// rate rather than failing on data.
//
// Gaps (OnGap): the beat still held is emitted, the filters restart, no RR spans the gap; the
// learnt thresholds and template are kept. Beat.sample counts samples received (gaps excluded).
//
// Latency: a beat is emitted about 0.5 s after its R peak (t_wave_s hold + detector lag), the
// first `learning_beats` beats of a stream only once the template exists.
//
// Several signals, one decision (inputs: ECG, plethysmogram, arterial pressure). The first ECG
// lead of a device is its primary lead: its beats, episodes and signal quality are the
// operator's output, exactly as for a single-lead device. Every further lead runs the same
// chain privately, and a pulsatile signal runs a PulseDetector (pulse_detector.h); together
// they verify the primary lead's life-threatening alarms when they open:
//   ASYS      held back while another usable lead shows QRS complexes since the asystole
//             began, or a pulsatile signal shows regular pulses through it;
//   VT        held back while another usable lead beats regularly below the VT rate over the
//             run (a run waits up to 4 s for that lead's beats, which lag the primary's), or
//             the pulse goes on through the run as before it - same rate, below the VT rate,
//             and amplitude - as it does beside an ECG artefact (VT with a pulse deficit
//             changes the pulse);
//   VF, VFL   held back while another usable lead beats regularly at 30-150 bpm, or the pulse
//             is regular and plausible (fibrillating ventricles perfuse nothing);
// A held-back alarm is judged again at each primary chunk and is emitted (with its first
// start) as soon as the other signals stop contradicting it; its later phases are dropped
// while held, except that a VT run which ends while held is judged once the other lead caught
// up (then raised as opened and closed, or never). Only the phases of an alarm whose opening
// went out reach the output. Other leads never raise an alarm the primary lead does not (on
// MIT-BIH, VT from either lead raised false VT/VF from 1.3 to 8.9 per hour). The evidence of
// every verified alarm names the other signals and what they showed ("lead_<n>_beats",
// "lead_<n>_rate", "pleth_pulses", "pleth_pulse_rate", "pleth_pulse_regular", likewise
// "abp_*"). Without other signals the primary lead decides alone. A lead gap the runtime
// reports restarts the primary lead; another lead's holes are found from its chunks' times.
//
// Threading: the operator is immutable and shared; one EcgMonitorState per patient stream,
// used by one thread at a time.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "operators/core/operator_spec.h"
#include "operators/core/stream_operator.h"
#include "operators/ecg/atrial_activity.h"
#include "operators/ecg/beat_classifier.h"
#include "operators/ecg/ecg_operator_name.h"
#include "operators/ecg/heart_rate.h"
#include "operators/ecg/pulse_detector.h"
#include "operators/ecg/qrs_detector.h"
#include "operators/ecg/rhythm_analyzer.h"

namespace vigil::ecg {

struct EcgMonitorOptions {
  QrsOptions qrs;  // sample_rate_hz is ignored (taken from the data)
  BeatClassifierOptions classifier;
  RhythmOptions rhythm;
  PulseOptions pulse;         // keys "pulse_*"
  bool verify_alarms = true;  // "verify_alarms": 0 lets the primary lead decide alone
};

// Every key of ecg.arrhythmia: QRS detection, classification, rhythm, pulse, verify_alarms.
const ops::ParameterTable<EcgMonitorOptions>& EcgMonitorParameters();

class EcgMonitorState;

class EcgMonitor final : public ops::SpecifiedOperator<EcgMonitor> {
 public:
  static constexpr std::string_view kName = kEcgOperatorName;
  static constexpr std::string_view kVersion = "1.0.0";

  // Throws ops::OptionError (see above).
  static std::unique_ptr<const EcgMonitor> Make(const ops::Parameters& parameters);
  static std::unique_ptr<const EcgMonitor> Make(const EcgMonitorOptions& options);
  // Name, version, inputs, parameters, alerts and measurements (name(), version() and
  // inputs() answer from it).
  static const ops::OperatorSpec& Spec();

  std::unique_ptr<ops::OperatorState> MakeState() const override;
  void Process(ops::OperatorState& state, ops::Signal signal, const ops::Chunk& chunk,
               ops::Events& out) const override;
  void OnGap(ops::OperatorState& state, ops::Signal signal, ops::TimeUs from_us, ops::TimeUs to_us,
             ops::Events& out) const override;
  void Finish(ops::OperatorState& state, ops::Events& out) const override;
  // Lead off / lead on reach the signal-quality stage.
  void OnDeviceEvent(ops::OperatorState& state, const ops::DeviceEventView& event,
                     ops::Events& out) const override;

  const EcgMonitorOptions& options() const { return options_; }
  const RhythmAnalyzer& rhythm() const { return rhythm_; }
  const PulseDetector& pulse() const { return pulse_; }
  // The QRS options used at `sample_rate_hz` (corners adapted to the rate as described above).
  QrsOptions QrsOptionsAt(double sample_rate_hz) const;

 private:
  explicit EcgMonitor(const EcgMonitorOptions& options);
  // Hands the beats emitted since the last call and `chunk` to the rhythm stage.
  void RunRhythm(EcgMonitorState& s, const ops::Chunk& chunk, ops::TimeUs beats_final_until_us,
                 ops::Events& out) const;
  // A lead's chain after missing samples [from_us, to_us): the beat held is emitted, filters
  // restart, no RR spans the gap.
  void RestartLead(EcgMonitorState& s, ops::TimeUs from_us, ops::TimeUs to_us,
                   ops::Events& out) const;
  // The end of a lead's stream: the beats still held are emitted, open episodes close.
  void FlushLead(EcgMonitorState& s, ops::Events& out) const;
  // The single-lead chain on one lead's state.
  void ProcessLead(EcgMonitorState& s, const ops::Chunk& chunk, ops::Events& out) const;
  // Moves the primary lead's events to `out`, holding back the alarms the other signals
  // contradict (see above); `now_us` is the primary lead's time.
  void Verify(EcgMonitorState& s, ops::Events& primary, ops::TimeUs now_us, ops::Events& out) const;
  // Empty when the other signals do not contradict `episode` at `now_us`; otherwise why not.
  // Appends what they showed to `why` either way.
  // Raises a held alarm (opened, and closed when it ended) unless the other signals still
  // contradict it; otherwise it is dropped, never raised.
  void Release(EcgMonitorState& s, const ops::Episode& held, ops::TimeUs now_us, bool judge,
               ops::Events& out) const;
  // Hands a verified alarm's phase on only when its opening went out.
  void Pass(EcgMonitorState& s, ops::Episode episode, ops::Events& out) const;
  std::string Contradiction(const EcgMonitorState& s, const ops::Episode& episode,
                            ops::TimeUs now_us, ops::Explanation& why) const;
  EcgMonitorOptions options_;
  RhythmAnalyzer rhythm_;
  PulseDetector pulse_;
};

// Per-patient state: created by EcgMonitor::MakeState, snapshot to bytes and restored.
// Throws std::invalid_argument when handed to another operator's methods.
class EcgMonitorState final : public ops::OperatorState {
 public:
  std::string Snapshot() const override;
  void Restore(std::string_view bytes) override;

 private:
  friend class EcgMonitor;
  explicit EcgMonitorState(const EcgMonitor& op) : op_(&op), rhythm_(op.rhythm().MakeState()) {}
  void SaveLead(ops::SnapshotWriter& w) const;
  void LoadLead(ops::SnapshotReader& r);

  void Start(double sample_rate_hz);
  // Classifies new detections and emits the beats the classifier released.
  void Emit(std::vector<QrsDetection>& detections, ops::Events& out);
  void EmitClassified(ops::Events& out);
  // Every emitted beat passes here (the hook for rhythm analysis).
  void OnBeat(const ops::Beat& beat, ops::Events& out);
  ops::TimeUs TimeOf(int64_t sample) const;

  const EcgMonitor* op_;
  double sample_rate_hz_ = 0;  // 0 until the first chunk
  std::optional<QrsDetector> qrs_;
  std::optional<BeatClassifier> classifier_;
  HeartRateTracker heart_rate_;
  ops::SampleAnchor anchor_;       // beat times (see EcgMonitor::Process)
  int64_t last_beat_sample_ = -1;  // -1: no previous beat (start or after a gap)
  // Detections waiting for their label (the classifier holds its first beats).
  struct Waiting {
    int64_t sample;
    ops::TimeUs time_us;
    float rr_s;
    float heart_rate_bpm;
    AtrialSegment atrial;  // PR-interval signal, cut while the conditioned ring holds it
  };
  std::deque<Waiting> waiting_;  // front has id waiting_first_id_
  int64_t waiting_first_id_ = 0;
  std::vector<QrsDetection> detections_;    // scratch
  std::vector<ClassifiedBeat> classified_;  // scratch
  std::vector<float> window_;               // scratch
  std::unique_ptr<RhythmState> rhythm_;
  std::vector<ops::Beat> new_beats_;       // emitted, not yet given to the rhythm stage
  std::vector<AtrialSegment> new_atrial_;  // their PR-interval segments (same order)
  double mean_rr_s_ = 0.8;                 // bounds the detector's search-back delay

  // Multi-signal verification (used on the primary lead's state only).
  struct OtherLead {
    int lead = 0;
    std::unique_ptr<EcgMonitorState> state;
    std::deque<ops::TimeUs> beats;  // its beats of the last PulseDetector::kKeepS
    ops::TimeUs next_us = 0;        // end of its last chunk (its gaps restart it)
  };
  int primary_lead_ = -1;  // -1 until the first ECG chunk
  std::vector<OtherLead> others_;
  PulseDetector::State pulse_[2];   // plethysmogram, arterial pressure
  std::vector<ops::Episode> held_;  // opened alarms held back, at most one per kind
  uint8_t open_ = 0;                // verified kinds whose opening went out (EcgMonitor::Pass)
  ops::Events lead_events_;         // scratch
};

}  // namespace vigil::ecg
